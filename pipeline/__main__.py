"""python -m pipeline → the brief CLI."""

from pipeline.cli import main

main()
