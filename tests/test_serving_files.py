"""model.serving: which files an event may open, the app's output files, and the disk they take."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio.utils import get_upload_folder
from gradio_client import Client
from PIL import Image

import app
from model.images import heatmap_overlay
from model.paths import ROOT
from model.serving import files, server, tmp
from app_helpers import generate  # tests/ is on sys.path (rootdir conftest)

TAG = files.FILE_META


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """An upload folder and an output folder of our own for one test."""
    up, out = tmp_path / "uploads", tmp_path / "outputs"
    up.mkdir()
    out.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(up))
    monkeypatch.setattr(files, "output_dir", lambda: out)
    assert Path(get_upload_folder()) == up
    return up, out


def test_trusted_upload_accepts_uploads_and_our_files(roots):
    up, out = roots
    for folder in roots:
        (folder / "h").mkdir()
        (folder / "h" / "a.png").write_bytes(b"x")
        assert files.trusted_upload({"path": str(folder / "h" / "a.png"), "meta": TAG}) == str(folder / "h" / "a.png")
    assert files.trusted_upload(None) is None and files.trusted_upload("") is None
    assert files.trusted_upload({"path": "", "meta": TAG}) is None


@pytest.mark.parametrize("value, message", [
    ("/etc/passwd", "must be an uploaded image file, got a text string"),
    ("https://x.org/a.png", "got a URL"),
    (7, "got a number"),
    ([{"path": "/etc/passwd"}], "got a list"),
    ({"path": "/etc/passwd"}, "got a record that is not a Gradio upload"),  # no tag: not an upload
    ({"path": "/etc/passwd", "meta": {}}, "got a record that is not a Gradio upload"),
])
def test_trusted_upload_refuses_what_is_not_a_tagged_record(roots, value, message):
    with pytest.raises(gr.Error, match=message):
        files.trusted_upload(value)


def test_trusted_upload_gives_one_answer_for_every_outside_path(roots, tmp_path):
    up, _ = roots
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    (up / "link.png").symlink_to(outside)  # a link inside the upload folder to a file outside it
    (up / "dir").mkdir()
    answers = set()
    for path in (outside, tmp_path / "missing.png", tmp_path, up / "link.png", up / "dir",
                 up / ".." / "secret.png", ROOT / "app.py"):
        with pytest.raises(gr.Error) as e:
            files.trusted_upload({"path": str(path), "meta": TAG})
        answers.add(str(e.value))
    assert len(answers) == 1 and "not a file this app received" in answers.pop()


def test_first_gallery_file(roots):
    _, out = roots
    (out / "a.png").write_bytes(b"x")
    rec = {"path": str(out / "a.png"), "meta": TAG}
    assert files.first_gallery_file([{"image": rec, "caption": "c"}]) == str(out / "a.png")
    assert files.first_gallery_file([(rec, "c")]) == str(out / "a.png")
    assert files.first_gallery_file([]) is None and files.first_gallery_file(None) is None
    with pytest.raises(gr.Error, match="not a file this app received"):
        files.first_gallery_file([{"image": {"path": str(ROOT / "app.py"), "meta": TAG}, "caption": None}])


def test_output_files_are_named_for_their_download(roots):
    p = Path(files.new_file_path(".png", files.slug("A red apple! 🍎")))
    assert p.name == "a-red-apple.png" and p.parent.parent == roots[1]
    assert files.slug("🍎") == "emoji" and len(files.slug("x" * 200)) == 40


def test_output_files_rotate_in_the_order_they_were_made(roots):
    """Only the newest `keep` files of a kind stay, the oldest go first (their folders are reused);
    other kinds are untouched."""
    gif = Path(files.new_file_path(".gif", keep=3))
    gif.write_bytes(b"gif")
    paths = []
    for i in range(5):
        paths.append(Path(files.new_file_path(".png", f"n{i}", keep=3)))
        paths[-1].write_bytes(b"png")
    assert [p.is_file() for p in paths] == [False, False, True, True, True]
    assert len(list(roots[1].glob("png-*"))) == 3 and gif.is_file()
    assert len(set(p.parent for p in paths[2:])) == 3  # one file per folder: the download keeps its name
    files.new_file_path(".png", keep=1)  # a lower bound takes the surplus away at once
    assert len(list(roots[1].glob("png-*"))) == 1 and not any(p.is_file() for p in paths)


def test_cache_budget_prunes_oldest_first_and_spares_new_files(tmp_path):
    now = time.time()
    for i in range(10):
        d = tmp_path / f"h{i}"
        d.mkdir()
        f = d / "img.png"
        f.write_bytes(b"x" * 1000)
        os.utime(f, (now - 1000 + i * 100, now - 1000 + i * 100))  # h0 oldest ... h9 newest (100 s old)
    budget = files.CacheBudget(tmp_path, max_bytes=3500, min_age=150)
    freed = budget.prune(now)
    left = sorted(p.parent.name for p in tmp_path.rglob("*.png"))
    assert freed == 7000 and left == ["h7", "h8", "h9"] and budget.used() == 3000
    assert not (tmp_path / "h0").exists()  # the emptied folder went too
    budget = files.CacheBudget(tmp_path, max_bytes=0, min_age=150)
    budget.prune(now)
    assert sorted(p.parent.name for p in tmp_path.rglob("*.png")) == ["h9"]  # younger than min_age: kept


def test_stale_roots_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{tmp.ROOT_PREFIX}{dead.pid}-abc"
    alive = tmp_path / f"{tmp.ROOT_PREFIX}{os.getppid()}-abc"
    mine = tmp_path / f"{tmp.ROOT_PREFIX}{os.getpid()}-abc"
    other = tmp_path / "emoji-t2i-files-oldstyle"
    for d in (stale, alive, mine, other):
        d.mkdir()
    assert tmp.remove_stale_roots(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and mine.exists() and other.exists()


def test_an_interrupted_examples_cache_is_rebuilt(tmp_path):
    cache = tmp_path / "examples" / "abc"
    (cache / "7").mkdir(parents=True)
    (cache / "7" / "log.csv").write_text("gallery,status,sheet\na,b,c\n")  # 1 of 3 examples, then killed
    assert not server.mark_cache_finished(cache, 3)
    assert server.drop_unfinished_cache(cache) and not cache.exists()
    (cache / "7").mkdir(parents=True)
    (cache / "7" / "log.csv").write_text("gallery,status,sheet\na,b,c\nd,e,f\ng,h,i\n")
    assert server.mark_cache_finished(cache, 3)
    assert not server.drop_unfinished_cache(cache) and cache.exists()


def test_the_cache_is_marked_once_gradio_has_written_every_example(tmp_path):
    """Gradio may still be caching when launch() returns: a watcher marks the cache when the last
    example arrives."""
    cache = tmp_path / "abc"
    (cache / "7").mkdir(parents=True)
    (cache / "7" / "log.csv").write_text("gallery,status,sheet\na,b,c\n")
    watcher = server.mark_cache_when_finished(cache, 2, timeout=20)
    time.sleep(1.5)
    assert not (cache / server.FINISHED).exists()
    (cache / "7" / "log.csv").write_text("gallery,status,sheet\na,b,c\nd,e,f\n")
    watcher.join(timeout=10)
    assert (cache / server.FINISHED).exists()


def test_patch_map_shows_where_the_discriminator_objects():
    img = Image.new("RGB", (16, 16), (255, 255, 255))
    patch = np.full((4, 4), 0.45, dtype=np.float32)
    patch[0, 0] = 0.40  # one region judged a little less real than the rest
    out = np.asarray(heatmap_overlay(img, patch, size=64)).astype(int)
    corner, rest = out[2, 2], out[-2, -2]
    assert corner[0] - corner[1] > 100 and rest[1] - rest[0] > 100  # red there, green elsewhere
    flat = np.asarray(heatmap_overlay(img, np.full((4, 4), 0.5, np.float32), size=64)).astype(int)
    assert np.ptp(flat.reshape(-1, 3), axis=0).max() == 0  # no spread, no pattern invented


def app_files() -> set[str]:
    """Every file path in the app folder, leaving out what tests and tools make on purpose."""
    skip = {".git", ".venv", "runs", "data", ".pack", "__pycache__", "output", ".pytest_cache"}
    out = set()
    for root, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip]
        out.update(os.path.relpath(os.path.join(root, n), ROOT) for n in names)
    return out


@pytest.mark.slow
def test_the_app_leaves_nothing_behind_after_sigterm(tiny_model_dir, tmp_path):
    """`python app.py` writes only under its own temp folder (never the app folder; gradio's and
    torch's temp files included) and removes it when stopped with SIGTERM, and a folder a killed
    process left is removed at the next start; the examples cache lives in the user cache."""
    from model.bench.app_client import free_port

    env = {**os.environ, "MODEL_ID": str(tiny_model_dir), "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path / "tmp"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "GRADIO_ANALYTICS_ENABLED": "False"}
    for var in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE"):  # an in-process test app sets these for itself
        env.pop(var, None)
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / f"{tmp.ROOT_PREFIX}999999999-old").mkdir()  # a killed process's (no such pid)
    before = app_files()
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        from gradio_client import Client
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "dl"))
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(1)
        client.predict("red apple", "any", 2, 0, False, 1.0, 2, 0.5, True, api_name="/generate")
        roots = list((tmp_path / "tmp").glob(f"{tmp.ROOT_PREFIX}{proc.pid}-*"))
        assert len(roots) == 1 and any(roots[0].rglob("*.png"))
        deadline = time.monotonic() + 300  # the server answers while it still caches the examples
        while time.monotonic() < deadline and not list((tmp_path / "cache").rglob(server.FINISHED)):
            time.sleep(0.5)
        assert list((tmp_path / "cache" / "emoji-t2i" / "examples").rglob(server.FINISHED))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not roots[0].exists(), "the temp folder outlived the app"
    assert os.listdir(tmp_path / "tmp") == [], os.listdir(tmp_path / "tmp")  # the stale one went at start
    assert app_files() == before  # nothing (.gradio/, flagged/, a gradio .pyi stub) written into the app folder


# --- the files gradio serves and the result files the events write ---

@pytest.mark.slow
def test_served_files_are_deleted_on_schedule(tiny_model_dir, tmp_path, monkeypatch):
    """The images, GIFs and sheets gradio serves do not pile up: with delete_cache (1 s, 2 s old)
    every file one request created is gone a few seconds later (the app runs at (3600, 3600))."""
    from helpers import start_app

    monkeypatch.setattr(app, "DELETE_CACHE", (1, 2))
    srv = start_app(tiny_model_dir, tmp_path / "cache")
    try:
        generate(Client(srv.url, verbose=False, download_files=str(tmp_path / "dl")), n=2, candidates=2)
        served = [Path(f) for s in srv.demo.temp_file_sets for f in s]
        assert any(f.suffix == ".png" and f.is_file() for f in served), served
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(f.is_file() for f in served):
            time.sleep(0.5)
        assert not any(f.is_file() for f in served), [f for f in served if f.is_file()]
    finally:
        srv.demo.close()


def test_result_files_rotate_safely_under_concurrent_requests(monkeypatch, tmp_path):
    """Many requests writing result files at once: none fails (a file another thread removed
    between the listing and its stat used to raise FileNotFoundError), and only `keep` stay."""
    monkeypatch.setattr(files, "output_dir", lambda: tmp_path)
    paths = []
    errors = in_threads(lambda: [paths.append(files.new_file_path(".png", keep=8)) for _ in range(25)], 8)
    assert not errors, errors[:3]
    left = {str(p) for p in tmp_path.glob("png-*")}  # one folder per file, rotated as a whole
    assert len(paths) == 200 and 1 <= len(left) <= 8 and left <= {str(Path(p).parent) for p in paths}


def test_gallery_images_are_written_as_fast_pngs(tmp_path, monkeypatch):
    """Gallery images reach gradio as PNG files we wrote at zlib level 1 (gradio would encode a
    PIL image at level 6 itself), pixel-identical to the image."""
    from model.serving import events as ui

    monkeypatch.setattr(files, "output_dir", lambda: tmp_path)
    im = Image.effect_noise((64, 64), 40).convert("RGB")
    path = ui.write_png(im, "red-apple-google-seed3")
    assert Path(path).name == "red-apple-google-seed3.png"  # downloads are named, not tmpXXXX.png
    back = Image.open(path)
    assert back.size == (256, 256) and back.format == "PNG"
    assert list(back.getdata()) == list(im.resize((256, 256), Image.NEAREST).getdata())
    slow = io.BytesIO()
    im.resize((256, 256), Image.NEAREST).save(slow, "png")  # PIL's default level
    assert Path(path).stat().st_size >= len(slow.getvalue())  # level 1 compresses less: it was not level 6


def test_the_output_folder_is_made_once_when_threads_ask_together(monkeypatch, tmp_path):
    """The gallery's PNGs are written two at a time: on a fresh process the first two files may ask
    for the output folder at once (this raised FileExistsError in `python app.py`'s example caching)."""
    import functools

    made = []  # fresh caches for this test; the session's own output folder is left as it is
    monkeypatch.setattr(files, "_app_root", functools.cache(lambda: made.append(1) or tmp_path))
    monkeypatch.setattr(files, "_output_dir", functools.cache(files._output_dir.__wrapped__))
    results = []
    errors = in_threads(lambda: results.append(files.output_dir()), 8)
    assert not errors and len(made) == 1 and results == [tmp_path / "files"] * 8


def in_threads(fn, n: int) -> list[Exception]:
    """fn run by n threads that start together (at a barrier) -> the exceptions they raised."""
    import threading

    start, errors = threading.Barrier(n), []

    def run():
        start.wait()
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
