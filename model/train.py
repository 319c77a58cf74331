"""``python -m model.train --help``: train the old VAE-GAN (see model/training/gan.py).

Also under ``torchrun --nproc_per_node N -m model.train ...``. The shipped latent model is trained
by ``python -m model.training`` instead.
"""
from .training.gan import Trainer, main, parse_args
from .training.gan_config import TrainConfig

__all__ = ["TrainConfig", "Trainer", "main", "parse_args"]

if __name__ == "__main__":
    main()
