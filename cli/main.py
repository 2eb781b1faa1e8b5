"""The `paylinks` command: one front door for the database, the demo, every flow and the emulator.

The commands live by what they do: `cli.jobs` runs the flows, `cli.setup` sets paylinks up; both
register on the one app of `cli.app`.
"""

from __future__ import annotations

import sys

from cli import jobs, setup
from cli.app import app

COMMAND_MODULES = (jobs, setup)  # importing them registers their commands on `app`
__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
