"""``python -m model.train --help``: train the latent model (the loop is model/training/trainer.py).

Also under ``torchrun --nproc_per_node N -m model.train ...`` (data-parallel, see training/distributed.py).
"""
from .training.trainer import TrainConfig, Trainer, main

__all__ = ["TrainConfig", "Trainer", "main"]

if __name__ == "__main__":
    main()
