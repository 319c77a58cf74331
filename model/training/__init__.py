"""Training of the latent model: its config, its objective, the loop (``python -m model.training``);
our upsampler's trainer (upsampler); and the old VAE-GAN's trainer, config and model card (gan,
gan_config, gan_card; ``python -m model.train``)."""
