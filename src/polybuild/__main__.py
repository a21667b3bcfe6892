"""`python -m polybuild` runs the command-line interface."""

from polybuild.cli import main

main()
