"""Evaluation tools: what users see for what they type (user_prompts)."""
