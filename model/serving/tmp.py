"""One temporary folder per app process: `python app.py` points TMPDIR into it before gradio or
torch are imported, so whatever any library writes there (gradio's cache and edit history, torch's
compile cache, the app's own outputs) lives in one place, removed when the process exits. Folders
that killed processes left behind are removed at the next start. No gradio or torch imports here."""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

ROOT_PREFIX = "emoji-t2i-"  # emoji-t2i-<pid>-<random>


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_roots(tmp: str | Path | None = None) -> list[Path]:
    """Folders of earlier app processes that died without cleaning up (SIGKILL, power loss)."""
    removed = []
    for d in Path(tmp or tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*-*"):
        m = re.match(rf"{ROOT_PREFIX}(\d+)-", d.name)
        if not m or not d.is_dir() or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def is_own_root(path: str | Path | None) -> bool:
    return bool(path) and Path(path).name.startswith(f"{ROOT_PREFIX}{os.getpid()}-")


def own_temp_dir() -> tuple[Path, list[Path]]:
    """Make this process's folder under the system temp dir and point TMPDIR (and `tempfile`) into
    it; -> (the folder, stale folders removed). Idempotent within a process."""
    if is_own_root(os.environ.get("TMPDIR")):
        return Path(os.environ["TMPDIR"]), []
    system = Path(tempfile.gettempdir())
    removed = remove_stale_roots(system)
    root = Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{os.getpid()}-", dir=system))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    os.environ["TMPDIR"] = tempfile.tempdir = str(root)
    return root, removed


def new_root() -> Path:
    """This process's folder: the TMPDIR own_temp_dir set, else a fresh one (the app built without
    app.py's main, e.g. in tests), removed at exit either way."""
    tmp = os.environ.get("TMPDIR")
    if is_own_root(tmp):
        return Path(tmp)
    root = Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{os.getpid()}-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root
