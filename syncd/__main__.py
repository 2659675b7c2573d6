"""`python -m syncd` is the `syncd` command."""

from syncd.cli import run

run()
