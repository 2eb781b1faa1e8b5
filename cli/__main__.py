"""`python -m cli` runs the `paylinks` command."""

from cli.main import main

main()
