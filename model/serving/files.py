"""Files in and out of the app, in one place: which files an event may open, where the app writes
what it returns, and how much disk both may take.

What Gradio 6.31 guarantees, and what it does not (read from gradio/processing_utils.py, blocks.py):
- An input record that carries Gradio's tag (`"meta": {"_type": "gradio.FileData"}`) is checked
  before the event runs: its path must lie in Gradio's upload folder (`GRADIO_TEMP_DIR`), or the
  call is refused.
- A record *without* the tag is not checked at all, and an event with `preprocess=False` receives
  it as sent: `{"path": "/etc/passwd"}` reaches the function. `api_visibility="private"` hides an
  event from the API page, but it can still be called by name (`POST /gradio_api/call/<name>`).
- Whatever path an event *returns* is copied into Gradio's cache and served if it lies in the
  working directory, the temp directory or `allowed_paths`: an input path handed back unchecked
  is a file download for anyone.
So every event that takes a file passes it through `trusted_upload` first: only files Gradio
received as uploads (its upload folder) and files this app wrote (`output_dir()`) are opened or
returned, and every other path gets the same answer whether it exists or not.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import gradio as gr
from gradio.data_classes import ImageData
from gradio.utils import get_upload_folder
from pydantic import ValidationError

from . import tmp

FILE_META = {"_type": "gradio.FileData"}
NOT_RECEIVED = ("{what} is not a file this app received. Upload it (in Python: "
                "gradio_client.handle_file(path)), or send one from the text-to-image tab.")


# --- inputs: only uploads and the app's own files ---

def describe(value) -> str:
    """A caller's value named for a message, without echoing a long or hostile value back."""
    if isinstance(value, str):
        return "a URL" if re.match(r"^(https?|data|file):", value, re.I) else "a text string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {list: "a list", tuple: "a list", dict: "a record that is not a Gradio upload"}.get(type(value), "another kind of value")


def is_upload_record(value) -> bool:
    """A Gradio file record: a dict with a string path and Gradio's own tag."""
    return isinstance(value, dict) and isinstance(value.get("path"), str) and value.get("meta") == FILE_META


class UploadRecord(ImageData):
    """gr.Image's data model, refusing with a message what is not a file record. Gradio validates
    an input against its component's data model before the event runs, and a validation error
    there reaches the caller as `{"error": null}`; the gr.Error raised here reaches it as text."""

    @classmethod
    def model_validate(cls, obj, *args, **kwargs):
        message = (f"The image must be an uploaded image file, got {describe(obj)}. "
                   "In Python, pass gradio_client.handle_file(path).")
        if obj is not None and not isinstance(obj, dict):
            raise gr.Error(message, print_exception=False)
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError:
            raise gr.Error(message, print_exception=False) from None


def upload_image(**kwargs) -> gr.Image:
    """A gr.Image input whose raw value is checked as `UploadRecord` (events take it with
    preprocess=False and pass it to `trusted_upload`). The data model is set on the instance, not
    by subclassing: gradio writes a .pyi stub beside the source of every component subclass at
    import time, and the app must not write into its own folder."""
    image = gr.Image(**kwargs)
    image.data_model = UploadRecord
    return image


def trusted_roots() -> list[Path]:
    return [Path(get_upload_folder()).resolve(), output_dir().resolve()]


def trusted_upload(value, what: str = "the image") -> str | None:
    """An event's file input -> the real path of a file Gradio received or this app wrote; None for
    no file (None, "", an empty record). Anything else raises gr.Error: a value that is not a
    tagged record names what it got; a path outside those folders, missing or not, and a folder
    all get the same message, so no answer tells whether a server path exists."""
    if value is None or value == "" or (isinstance(value, dict) and not value.get("path")):
        return None
    if not is_upload_record(value):
        raise gr.Error(f"{what.capitalize()} must be an uploaded image file, got {describe(value)}. "
                       "In Python, pass gradio_client.handle_file(path).", print_exception=False)
    real = Path(os.path.realpath(value["path"]))
    inside = any(real.is_relative_to(root) for root in trusted_roots())
    if not inside or not real.is_file():  # is_file only for paths inside our folders: no oracle
        raise gr.Error(NOT_RECEIVED.format(what=what.capitalize()), print_exception=False)
    return str(real)


def first_gallery_file(gallery, what: str = "the first image") -> str | None:
    """A gallery's raw value ([{"image": record, "caption": ...}, ...]) -> its first image's trusted
    path; None for an empty gallery."""
    if not gallery:
        return None
    if not isinstance(gallery, list):
        raise gr.Error(f"The gallery must be a list of images, got {describe(gallery)}.", print_exception=False)
    item = gallery[0]
    if isinstance(item, dict) and "image" in item:  # the raw value: {"image": record, "caption": ...}
        item = item["image"]
    elif isinstance(item, (list, tuple)) and item:  # (record, caption)
        item = item[0]
    return trusted_upload(item, what)


# --- outputs: one private folder per process, removed at exit ---

_FIRST_USE = threading.Lock()  # functools.cache does not stop two threads making the folder at once


def app_root() -> Path:
    """This process's folder for everything it writes (model.serving.tmp); removed at exit."""
    with _FIRST_USE:
        return _app_root()


@functools.cache
def _app_root() -> Path:
    return tmp.new_root()


def output_dir() -> Path:
    """Gallery images, GIFs and PNG sheets the app returns (Gradio copies each into its cache).
    Made on first use; the gallery's PNGs are written two at a time, so the first two may ask at once."""
    with _FIRST_USE:
        return _output_dir()


@functools.cache
def _output_dir() -> Path:
    d = _app_root() / "files"
    d.mkdir(exist_ok=True)
    return d


_ROTATE = threading.Lock()
# (output folder, kind) -> the folders new_file_path made there, oldest first
_MADE: dict[tuple[str, str], deque[str]] = {}


def slug(text: str, limit: int = 40) -> str:
    """A prompt as a file-name part: 'A red apple!' -> 'a-red-apple' (ASCII, at most `limit`)."""
    s = re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")
    return s[:limit].rstrip("-") or "emoji"


def new_file_path(suffix: str, name: str = "emoji", keep: int = 256) -> str:
    """A fresh path <output_dir>/<folder>/<name><suffix>, one file per folder: the download keeps
    the readable name (Gradio serves a file under its base name). Only the newest `keep` of each
    suffix stay (a file only has to outlive its own request: Gradio copies it when the outputs are
    processed): past that, the oldest folder is emptied and reused. Listing the folders to remove
    the oldest cost 3.9 ms a file, nearly all of it the rmdir (on this machine's ext4, mounted with
    discard), 16 ms of a default call's 4 images; the folders are kept in order in memory instead
    (the output folder is this process's own), and a new file costs 0.05 ms."""
    kind = suffix.lstrip(".")
    out = output_dir()
    with _ROTATE:  # concurrent requests: one rotation at a time
        made = _MADE.setdefault((str(out), kind), deque())
        folder = None
        while len(made) >= keep:
            folder = made.popleft()
            if len(made) >= keep:  # keep was lowered: this one goes
                shutil.rmtree(folder, ignore_errors=True)
                folder = None
        if folder is not None:
            try:
                for entry in os.scandir(folder):
                    os.unlink(entry.path)
            except FileNotFoundError:  # removed behind our back (e.g. a cleanup of the temp folder)
                folder = None
        if folder is None:
            folder = tempfile.mkdtemp(prefix=f"{kind}-", dir=out)
        made.append(folder)
    return str(Path(folder) / f"{name}{suffix}")


# --- the process's disk footprint ---

def use_private_gradio_cache() -> Path:
    """Point Gradio's upload/cache folder (GRADIO_TEMP_DIR) into this process's own folder, unless
    the user set one: then `CacheBudget` may prune it without touching another app's files, and
    a clean exit removes it. Call before the Blocks are built (each component reads it then)."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        d = app_root() / "gradio"
        d.mkdir(exist_ok=True)
        os.environ["GRADIO_TEMP_DIR"] = str(d)
    return Path(os.environ["GRADIO_TEMP_DIR"])


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM (docker stop, Spaces restarts, kill) ends the server as Ctrl-C does, so Gradio
    closes and the atexit handlers remove this process's folder. Only the first one does: a
    second SIGTERM while the server closes (a supervisor that repeats it) is ignored."""
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


class CacheBudget:
    """Keeps a folder (Gradio's cache) under `max_bytes`: every `every` seconds, the oldest files
    older than `min_age` seconds go until the rest fits. Gradio itself deletes only by age (files
    older than an hour), which under steady use let /tmp grow ~41 MB a minute."""

    def __init__(self, folder: str | Path, max_bytes: int, every: float = 10.0, min_age: float = 60.0):
        self.folder, self.max_bytes, self.every, self.min_age = Path(folder), max_bytes, every, min_age

    def files(self) -> list[tuple[float, int, Path]]:
        out = []
        for p in self.folder.rglob("*"):
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            if p.is_file():
                out.append((st.st_mtime, st.st_size, p))
        return sorted(out)

    def used(self) -> int:
        return sum(size for _, size, _ in self.files())

    def prune(self, now: float | None = None) -> int:
        """One sweep; returns the bytes freed."""
        now = time.time() if now is None else now
        files = self.files()
        total, freed = sum(s for _, s, _ in files), 0
        for mtime, size, p in files:
            if total - freed <= self.max_bytes or now - mtime < self.min_age:
                break
            p.unlink(missing_ok=True)
            freed += size
            try:
                p.parent.rmdir()  # Gradio keeps one folder per file: drop it once empty
            except OSError:
                pass
        return freed

    def start(self) -> "CacheBudget":
        """Prune every `every` seconds, in a daemon thread, for the life of the process."""
        def loop():
            while True:
                time.sleep(self.every)
                self.prune()

        threading.Thread(target=loop, name="cache-budget", daemon=True).start()
        return self
