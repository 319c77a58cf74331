"""Training of the latent model: its config, its objective, the loop (``python -m model.train``);
the prior's text side rebuilt alone (reprior); our upsampler's trainer (upsampler)."""
