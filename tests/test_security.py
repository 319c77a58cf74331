"""No server file leaves through the API. Every event of the running app is called by name over
HTTP (`POST /gradio_api/call/<name>`, as an attacker would: private events answer such calls
too), with server paths in every input that carries a file, with and without Gradio's `meta`
tag. Nothing the app did not receive or write may come back, no such file may be opened, and the
answer must not tell whether a path exists."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio.utils import get_upload_folder
from PIL import Image

from model.paths import ROOT

FILE_META = {"_type": "gradio.FileData"}
FILE_INPUTS = (gr.Image, gr.Gallery, gr.File)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    """Server files an attacker names: a valid PNG in /tmp that was never uploaded, files in the
    app folder (an image and code), a missing path, a folder, and a traversal out of the upload
    folder."""
    tmp = Path(tempfile.mkdtemp(prefix="never_uploaded_"))
    png = tmp / "secret.png"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(png)
    paths = {
        "tmp_png": png,
        "app_png": ROOT / "assets" / "results" / "grid.png",
        "app_code": ROOT / "app.py",
        "missing": tmp / "missing.png",
        "folder": tmp,
        "traversal": Path(get_upload_folder()) / ".." / ".." / png.relative_to("/"),
    }
    yield paths
    png.unlink()
    tmp.rmdir()


def secret_bytes(secrets) -> set[bytes]:
    return {p.read_bytes() for p in secrets.values() if p.is_file()}


def file_events(demo):
    """(api_name, fn) of every event with a file-carrying input, private ones included."""
    return [(fn.api_name, fn) for fn in demo.fns.values()
            if fn.api_name and any(isinstance(c, FILE_INPUTS) for c in fn.inputs)]


def record(path, meta):
    r = {"path": str(path)}
    if meta != "none":
        r["meta"] = FILE_META if meta == "tag" else {}
    return r


def attack_inputs(fn, path, meta) -> list:
    """The event's inputs at their defaults, every file-carrying one replaced by the attack."""
    out = []
    for c in fn.inputs:
        if isinstance(c, gr.Gallery):
            out.append([{"image": record(path, meta), "caption": "google · seed 0 · realism 0.90 · match 0.90"}])
        elif isinstance(c, FILE_INPUTS):
            out.append(record(path, meta))
        else:
            out.append(c.value)
    return out


def call(url: str, api_name: str, data: list) -> tuple[str, object]:
    """-> ("complete" | "error", payload) read from the event stream."""
    r = httpx.post(f"{url}gradio_api/call/{api_name}", json={"data": data}, timeout=30)
    assert r.status_code == 200, (api_name, r.status_code, r.text[:300])
    stream = httpx.get(f"{url}gradio_api/call/{api_name}/{r.json()['event_id']}", timeout=60).text
    kind, payload = None, None
    for line in stream.splitlines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ").strip()
        elif line.startswith("data: ") and kind in ("complete", "error"):
            payload = json.loads(line.removeprefix("data: "))
    return kind, payload


def urls(value) -> list[str]:
    if isinstance(value, dict):
        return ([value["url"]] if isinstance(value.get("url"), str) else []) + [u for v in value.values() for u in urls(v)]
    if isinstance(value, list):
        return [u for v in value for u in urls(v)]
    return []


def test_every_file_event_is_attacked(server):
    """The list below covers every event that takes a file, public and private."""
    names = {name for name, _ in file_events(server.demo)}
    assert names == {"interpolate_images", "variations", "restyle", "edit", "score",
                     "send_to_scoring", "send_to_variations", "send_to_edit"}


@pytest.mark.parametrize("api_name", ["interpolate_images", "variations", "restyle", "edit", "score",
                                      "send_to_scoring", "send_to_variations", "send_to_edit"])
def test_no_server_file_leaves_through_an_event(server, secrets, api_name):
    fn = dict(file_events(server.demo))[api_name]
    leaked = secret_bytes(secrets)
    errors = {}
    for meta in ("none", "empty", "tag"):
        for name, path in secrets.items():
            kind, payload = call(server.url, api_name, attack_inputs(fn, path, meta))
            assert kind == "error", (api_name, meta, name, payload)  # refused: never opened, never returned
            for u in urls(payload):
                body = httpx.get(u, timeout=10).content
                assert body not in leaked, (api_name, meta, name, u)
            errors[(meta, name)] = (payload or {}).get("error")
        # no oracle: a missing path, a folder and an existing file get the same answer
        assert len({errors[(meta, n)] for n in ("tmp_png", "app_code", "missing", "folder", "traversal")}) == 1, \
            {k: v for k, v in errors.items() if k[0] == meta}
    assert errors[("none", "tmp_png")] and "not a file this app received" in errors[("none", "tmp_png")]


@pytest.mark.parametrize("api_name", ["sheet", "sheet_variations"])
def test_a_sheet_takes_no_path_from_the_caller(server, secrets, api_name):
    """The sheet events read only the session's gr.State (the key of a result the app kept): whatever
    a caller sends, no server file comes back, and a session shown no result gets a message."""
    fn = next(f for f in server.demo.fns.values() if f.api_name == api_name)
    assert fn.inputs and all(isinstance(c, gr.State) for c in fn.inputs)
    leaked = secret_bytes(secrets)
    for data in ([], [str(secrets["tmp_png"])], [record(secrets["tmp_png"], "tag")],
                 [record(secrets["app_code"], "none")], ["a-made-up-key"]):
        kind, payload = call(server.url, api_name, data)
        assert kind == "error", (api_name, data, payload)
        for u in urls(payload):
            assert httpx.get(u, timeout=10).content not in leaked, (api_name, data, u)


def test_gradio_does_not_serve_server_files_by_url(server, secrets):
    for name in ("tmp_png", "app_png", "app_code"):
        r = httpx.get(f"{server.url}gradio_api/file={secrets[name]}", timeout=10)
        assert r.status_code in (403, 404), (name, r.status_code)
        assert r.content not in secret_bytes(secrets)


def test_a_real_upload_still_works_through_the_same_events(server, tmp_path):
    """The check refuses attacks, not users: an uploaded file scores, and a generated image sent on
    to the edit tab comes back as an image the app wrote."""
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False, download_files=str(tmp_path / "dl"))
    png = tmp_path / "disc.png"
    Image.new("RGB", (40, 40), (30, 200, 30)).save(png)
    realism, _, _, _ = client.predict(handle_file(str(png)), "", "any", api_name="/score")
    assert 0 <= realism <= 1
    gallery, _ = client.predict("red apple", "any", 1, 0, False, 1.0, 1, 0.5, False, api_name="/generate")
    shown = gallery[0]["image"]
    fn = dict(file_events(server.demo))["send_to_edit"]
    upload_folder_path = next(p for p in Path(get_upload_folder()).rglob(Path(shown).name))
    kind, payload = call(server.url, "send_to_edit", [[{"image": record(upload_folder_path, "tag"), "caption": "x"}]])
    assert kind == "complete" and fn is not None, payload
    assert Path(payload[0]["path"]).name == Path(shown).name


def test_unknown_api_name_is_404(server):
    r = httpx.post(f"{server.url}gradio_api/call/no_such_event", json={"data": []}, timeout=10)
    assert r.status_code == 404 and "No API endpoint" in r.json()["error"]
