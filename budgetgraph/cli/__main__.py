"""``python -m budgetgraph.cli``."""

from . import main

main()
