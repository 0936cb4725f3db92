"""python -m pipeline → the brief CLI."""

from .cli import main

main()
