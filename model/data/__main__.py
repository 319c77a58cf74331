"""``python -m model.data --help``: build the emoji caption datasets (see cli.py)."""
import sys

from .cli import main

sys.exit(main())
