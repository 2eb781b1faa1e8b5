"""The `paylinks` command: one front door for the database, the demo, every flow and the emulator.

The commands live by what they do: `cli.jobs` runs the flows, `cli.setup` sets paylinks up, `cli.people`
takes office access away, `cli.local_club` runs the demo's club on this machine (`paylinks office`);
each registers on the one app of `cli.app`.
"""

from __future__ import annotations

import faulthandler
import signal
import sys

from cli import family, jobs, local_club, people, reminders, setup
from cli.app import app

COMMAND_MODULES = (
    jobs,
    setup,
    people,
    local_club,
    family,
    reminders,
)  # importing them registers their commands on `app`
__all__ = ["app", "main"]


def main() -> None:
    # `kill -USR1 <pid>` prints every thread's stack to stderr: a command that seems stuck (an
    # office that does not stop) can say where, and goes on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
