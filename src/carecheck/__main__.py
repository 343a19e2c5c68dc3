"""``python -m carecheck`` runs the command line."""

from carecheck.cli import main

main()
