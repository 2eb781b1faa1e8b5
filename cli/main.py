"""The `paylinks` command: one front door for the database, the demo, every flow and the emulator.

The commands live by what they do: `cli.jobs` runs the flows, `cli.setup` sets paylinks up, `cli.people`
takes office access away, `cli.local_club` runs the demo's club on this machine (`paylinks office`);
each registers on the one app of `cli.app`.
"""

from __future__ import annotations

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
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
