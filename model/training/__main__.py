"""``python -m model.training --help``: train the latent model (see trainer.py)."""
from .trainer import main

main()
