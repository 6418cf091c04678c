"""``python -m dynostat`` for the stub, like the real package."""

from dynostat.cli import main

main()
