"""Allow ``python -m churnops``."""

from churnops.cli import main

main()
