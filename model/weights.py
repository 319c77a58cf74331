"""Reading and writing a model folder's files, with errors that name the bad file."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn


def read_config(folder: Path, load):
    """folder/config.json through load(path) -> (config, its path); FileNotFoundError / ValueError name it."""
    cfg_path = Path(folder) / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} is missing: not a model folder")
    try:
        return load(cfg_path), cfg_path
    except (ValueError, TypeError, AttributeError) as e:  # bad JSON, unknown key, bad value or type
        raise ValueError(f"{cfg_path} is not a valid model config: {e}") from e


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; missing, unreadable or NaN/inf files are errors naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    try:
        sd = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable safetensors file: {e}") from e
    bad = [k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{path} is corrupt: NaN/inf values in {sorted(bad)[:5]}")
    return sd


def load_checked(module: nn.Module, sd: dict, path: Path, cfg_path: Path) -> None:
    """Load sd into module (as float32) after checking keys and shapes against the config's network."""
    own = module.state_dict()
    missing, unexpected = set(own) - set(sd), set(sd) - set(own)
    bad_shapes = [f"{k} {tuple(sd[k].shape)} (config wants {tuple(own[k].shape)})"
                  for k in sorted(set(own) & set(sd)) if own[k].shape != sd[k].shape]
    if missing or unexpected or bad_shapes:
        raise ValueError(f"{path} does not match {cfg_path}: missing={sorted(missing)[:5]} "
                         f"unexpected={sorted(unexpected)[:5]} wrong_shape={bad_shapes[:5]}")
    module.load_state_dict({k: v.float() for k, v in sd.items()})


def save_weights(module: nn.Module, path: Path, dtype: torch.dtype = torch.float16) -> None:
    """module's state dict as one safetensors file, floating tensors cast to dtype."""
    sd = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
          for k, v in module.state_dict().items()}
    save_file(sd, str(path), metadata={"format": "pt"})


def save_networks(model: nn.Module, names, folder: Path, dtype: torch.dtype = torch.float16) -> None:
    """folder/<name>.safetensors for each named sub-network of model."""
    for name in names:
        save_weights(getattr(model, name), Path(folder) / f"{name}.safetensors", dtype)


def load_networks(model: nn.Module, names, folder: Path, cfg_path: Path) -> None:
    """Each named sub-network from folder/<name>.safetensors, checked against the config's shapes."""
    for name in names:
        path = Path(folder) / f"{name}.safetensors"
        load_checked(getattr(model, name), read_safetensors(path), path, cfg_path)
