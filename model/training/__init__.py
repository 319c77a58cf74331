"""Training of the latent model: its config, its objective, the loop (``python -m model.training``)."""
