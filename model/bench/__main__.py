"""``python -m model.bench --help``: speed and cost of the model (see speed.py)."""
from .speed import main

main()
