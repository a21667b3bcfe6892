"""`python -m polybuild` runs the command-line interface."""

from polybuild.cli import run

run()
