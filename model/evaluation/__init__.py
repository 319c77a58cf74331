"""Evaluation tools. ``python -m model.evaluate``'s protocol: config (EvalConfig, the rows and
constants), metrics (R-precision, FD rows' statistics, diversity, spectrum), protocol (the run,
step by step), report (results.json notes, results.md, quality.png) and cli; and what users see
for what they type (user_prompts), the README grid (grid), image features (image_features) and
upsamplers compared (upsamplers)."""
