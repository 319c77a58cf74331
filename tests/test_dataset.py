"""model.dataset: any captioned imagefolder read into a Pack, cached, rebuilt when the captions change."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import COLOURS
from PIL import Image

from model.dataset import load_dataset


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """Six solid-colour 'emoji' in two styles, as a captioned imagefolder."""
    root = tmp_path_factory.mktemp("tinyfolder")
    rows = []
    for i, (text, rgb) in enumerate(COLOURS.items()):
        style = ("google", "openmoji")[i % 2]
        (root / style).mkdir(exist_ok=True)
        im = Image.new("RGBA", (16, 16), rgb + (255,))
        im.putpixel((0, 0), (0, 0, 0, 0))  # a transparent corner: composited onto white
        im.save(root / style / f"{i}.png")
        rows.append({"file_name": f"{style}/{i}.png", "text": text, "style": style})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root



def test_pack_reads_any_imagefolder(tiny_folder):
    pack = load_dataset(tiny_folder, size=16)
    assert pack.images.shape == (6, 3, 16, 16) and pack.images.dtype == torch.uint8
    assert pack.style_names == ["google", "openmoji"]
    assert tuple(pack.images[0, :, 0, 0].tolist()) == (255, 255, 255)  # alpha -> white
    assert pack.cap_emb.shape[1] == 384
    e = pack.embedding_of("red apple")
    assert e is not None and abs(float(e.norm()) - 1) < 1e-2
    # a second call reads the cached pack (same content)
    again = load_dataset(tiny_folder, size=16)
    assert torch.equal(again.images, pack.images) and again.captions == pack.captions


def test_pack_cache_is_rebuilt_when_the_captions_change(tiny_folder, monkeypatch):
    import model.data.records as records

    load_dataset(tiny_folder, size=16)
    before = set((tiny_folder / ".cache").glob("pack-*"))
    monkeypatch.setattr(records, "CAPTIONS_VERSION", records.CAPTIONS_VERSION + 1)
    load_dataset(tiny_folder, size=16)
    assert len(set((tiny_folder / ".cache").glob("pack-*")) - before) == 1  # a pack of the new captions
