"""A local fake of the Hugging Face Hub HTTP API, enough for huggingface_hub 2.4 to download and upload.

Model repos and Space repos; as read from huggingface_hub's source ({kind} is "models" or "spaces",
{prefix} is "" for a model and "spaces/" for a Space):
  GET  /api/{kind}/{repo}/revision/{rev}  -> {"id", "sha", "siblings"}    HfApi.model_info / space_info
  GET  /api/{kind}/{repo}/tree/{rev}      -> [{"type", "path", "size", "oid", "lfs"?}]  HfApi.list_repo_tree
  HEAD/GET /{prefix}{repo}/resolve/{rev}/{file} -> bytes + Content-Length, ETag, X-Repo-Commit (all required)
  POST /api/repos/create                  -> create_repo; 409 if it exists (exist_ok=True passes); a Space
                                             needs an sdk and starts with its own commit (.gitattributes, README.md)
  POST /api/validate-yaml
  POST /api/{kind}/{repo}/preupload/{rev} -> every file "regular"; with FakeHub(lfs=True), as the Hub: "lfs"
                                             for a binary sample (a NUL byte) or a file over 10 MB; and the oid of
                                             an unchanged file (so that the client skips it)
  POST /{prefix}{repo}.git/info/lfs/objects/batch, PUT /lfs/{oid}, POST /lfs/{oid}/verify
                                          -> the basic LFS transfer
  POST /api/{kind}/{repo}/commit/{rev}    -> ndjson file / lfsFile / deletedFile / deletedFolder items; with
                                             lfs=True it refuses (400), like the Hub, a binary or > 10 MB file
                                             sent as a plain git blob
lfs=True needs the client's non-Xet path (hf_xet absent, or huggingface_hub's is_xet_available patched to
False): with hf_xet, "lfs" files go to Xet storage, which this fake does not serve.
Errors are 404 + X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound, as the Hub sends them.
A revision is a branch name or a 40-hex commit sha; each commit holds its own files.
`repos` is keyed by "org/name" for a model and "spaces/org/name" for a Space (the Hub's URL prefix).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = r"(?P<repo>[^/]+/[^/]+)"
REV = r"(?P<rev>[^/]+)"
KIND = r"(?P<kind>models|spaces)"
PREFIX = r"(?P<prefix>spaces/)?"
OID = r"(?P<oid>[0-9a-f]{64})"
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores larger files in LFS/Xet whatever their content
SPACE_GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"


def repo_key(kind: str, repo_id: str) -> str:
    """The key of `repos` for a repo of `kind` ("models"/"model" or "spaces"/"space")."""
    return f"spaces/{repo_id}" if kind.startswith("space") else repo_id


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:512]


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self, lfs: bool = False) -> None:
        self.lfs = lfs  # store binary / large files through LFS and refuse them as plain blobs (see above)
        # key -> {"refs": {branch: sha}, "commits": {sha: {path: bytes}}, "lfs": {sha: {paths stored via LFS}},
        #         "meta": {"type", "sdk", "private"} (repos made by create_repo)}
        self.repos: dict[str, dict] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 hex -> bytes, uploaded through PUT /lfs/{oid}
        self.requests: list[str] = []  # "METHOD path", in arrival order
        self._server: ThreadingHTTPServer | None = None

    def add(self, repo_id: str, files: dict[str, bytes] | str | Path, revision: str = "main",
            lfs: set[str] | frozenset[str] = frozenset()) -> str:
        """Commit `files` (a dict, or every file of a folder) to `revision` of `repo_id` (a `repos` key);
        `lfs` names the paths stored through LFS. Returns the sha."""
        if not isinstance(files, dict):
            files = {p.name: p.read_bytes() for p in sorted(Path(files).iterdir()) if p.is_file()}
        sha = hashlib.sha1(repr(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items())).encode()
                           + repo_id.encode() + revision.encode()).hexdigest()
        repo = self.repos.setdefault(repo_id, {"refs": {}, "commits": {}, "lfs": {}})
        repo["commits"][sha], repo["refs"][revision] = dict(files), sha
        repo.setdefault("lfs", {})[sha] = set(lfs) & set(files)
        return sha

    def commit(self, repo_id: str, rev: str) -> tuple[str, dict[str, bytes]] | None:
        repo = self.repos[repo_id]
        sha = repo["refs"].get(rev, rev if rev in repo["commits"] else None)
        return None if sha is None else (sha, repo["commits"][sha])

    def lfs_paths(self, repo_id: str, rev: str = "main") -> set[str]:
        """The paths of `rev` whose content was committed as an LFS pointer (not a plain git blob)."""
        found = self.commit(repo_id, rev)
        return set() if found is None else set(self.repos[repo_id]["lfs"].get(found[0], set()))

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_HEAD(self) -> None:
                hub._handle(self, head=True)

            def do_GET(self) -> None:
                hub._handle(self)

            def do_POST(self) -> None:
                hub._handle(self, body=_read_body(self))

            def do_PUT(self) -> None:
                hub._handle(self, body=_read_body(self))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- request handling ---
    def _handle(self, h: BaseHTTPRequestHandler, *, head: bool = False, body: bytes = b"") -> None:
        path = unquote(urlsplit(h.path).path)
        self.requests.append(f"{h.command} {path}")
        if h.command == "PUT":
            return self._lfs_put(h, path, body)
        if h.command == "POST":
            return self._post(h, path, body)
        if m := re.fullmatch(rf"/api/{KIND}/{REPO}/(?P<what>revision|tree)/{REV}", path):
            key = repo_key(m["kind"], m["repo"])
            found = self._lookup(h, key, m["rev"])
            if found:
                sha, files = found
                if m["what"] == "revision":
                    data = {"id": m["repo"], "sha": sha, "siblings": [{"rfilename": f} for f in files]}
                    data.update(self.repos[key].get("meta", {}))
                else:
                    data = [self._tree_entry(key, sha, f, b) for f, b in files.items()]
                self._send(h, json.dumps(data).encode(), head=head)
        elif m := re.fullmatch(rf"/{PREFIX}{REPO}/resolve/{REV}/(?P<file>.+)", path):
            found = self._lookup(h, repo_key(m["prefix"] or "models", m["repo"]), m["rev"])
            if found and m["file"] not in found[1]:
                self._error(h, "EntryNotFound", commit=found[0])
            elif found:
                data = found[1][m["file"]]
                self._send(h, data, head=head, ctype="application/octet-stream",
                           headers={"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": found[0]})
        else:
            self._error(h, "RepoNotFound")

    def _tree_entry(self, key: str, sha: str, path: str, data: bytes) -> dict:
        entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
        if path in self.repos[key]["lfs"].get(sha, set()):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _post(self, h: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        if path == "/api/repos/create":
            return self._create(h, json.loads(body))
        if path == "/api/validate-yaml":
            return self._send(h, b'{"warnings": [], "errors": []}')
        if m := re.fullmatch(rf"/{PREFIX}{REPO}\.git/info/lfs/objects/batch", path):
            return self._lfs_batch(h, repo_key(m["prefix"] or "models", m["repo"]), json.loads(body))
        if m := re.fullmatch(rf"/lfs/{OID}/verify", path):
            size = json.loads(body).get("size")
            data = self.lfs_objects.get(m["oid"])
            if data is None or len(data) != size:
                return self._fail(h, 400, f"LFS object {m['oid']} missing or of another size")
            return self._send(h, b"{}")
        m = re.fullmatch(rf"/api/{KIND}/{REPO}/(?P<what>preupload|commit)/{REV}", path)
        if not m or repo_key(m["kind"], m["repo"]) not in self.repos:
            return self._error(h, "RepoNotFound")
        key = repo_key(m["kind"], m["repo"])
        old = self.commit(key, m["rev"])
        if m["what"] == "preupload":
            return self._preupload(h, key, old, json.loads(body)["files"])
        return self._commit(h, key, m["repo"], m["kind"], m["rev"], old, body)

    def _create(self, h: BaseHTTPRequestHandler, p: dict) -> None:
        repo_id = f"{p['organization']}/{p['name']}" if p.get("organization") else p["name"]
        kind = p.get("type") or "model"
        if kind == "space" and not p.get("sdk"):
            return self._fail(h, 400, "A Space needs an sdk")
        key = repo_key(kind, repo_id)
        prefix = "spaces/" if kind == "space" else ""
        if key in self.repos:  # the Hub's 409 still names the repo's url (create_repo(exist_ok=True) reads it)
            return self._fail(h, 409, "You already created this repo", url=f"{self.url}/{prefix}{repo_id}")
        if kind == "space":  # the Hub's own first commit of a new Space
            readme = f"---\ntitle: {p['name']}\nsdk: {p['sdk']}\n---\n".encode()
            self.add(key, {".gitattributes": SPACE_GITATTRIBUTES, "README.md": readme})
        else:
            self.repos[key] = {"refs": {}, "commits": {}, "lfs": {}}
        self.repos[key]["meta"] = {"type": kind, "sdk": p.get("sdk"), "private": p.get("visibility") == "private"}
        return self._send(h, json.dumps({"url": f"{self.url}/{prefix}{repo_id}"}).encode())

    def _preupload(self, h: BaseHTTPRequestHandler, key: str, old: tuple | None, files: list[dict]) -> None:
        lfs_now = self.repos[key]["lfs"].get(old[0], set()) if old else set()
        out = []
        for f in files:
            lfs = self.lfs and (f["size"] > LFS_THRESHOLD or is_binary(base64.b64decode(f["sample"])))
            entry = {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if old and f["path"] in old[1]:  # what the client compares with its local oid
                data = old[1][f["path"]]
                entry["oid"] = hashlib.sha256(data).hexdigest() if f["path"] in lfs_now else git_blob_sha1(data)
            out.append(entry)
        self._send(h, json.dumps({"files": out}).encode())

    def _lfs_batch(self, h: BaseHTTPRequestHandler, key: str, p: dict) -> None:
        if key not in self.repos:
            return self._error(h, "RepoNotFound")
        objects = []
        for o in p["objects"]:
            obj = {"oid": o["oid"], "size": o["size"]}
            if o["oid"] not in self.lfs_objects:  # already stored: no actions, the client skips the upload
                obj["actions"] = {"upload": {"href": f"{self.url}/lfs/{o['oid']}"},
                                  "verify": {"href": f"{self.url}/lfs/{o['oid']}/verify"}}
            objects.append(obj)
        self._send(h, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   ctype="application/vnd.git-lfs+json")

    def _lfs_put(self, h: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        m = re.fullmatch(rf"/lfs/{OID}", path)
        if not m:
            return self._error(h, "RepoNotFound")
        if hashlib.sha256(body).hexdigest() != m["oid"]:
            return self._fail(h, 400, "content does not match the LFS oid")
        self.lfs_objects[m["oid"]] = body
        self._send(h, b"")

    def _commit(self, h: BaseHTTPRequestHandler, key: str, repo_id: str, kind: str, rev: str, old: tuple | None,
                body: bytes) -> None:
        files = dict(old[1]) if old else {}
        lfs = set(self.repos[key]["lfs"].get(old[0], set())) if old else set()
        for item in (json.loads(line) for line in body.splitlines() if line.strip()):
            value = item["value"]
            if item["key"] == "file":
                data = base64.b64decode(value["content"])
                if self.lfs and (is_binary(data) or len(data) > LFS_THRESHOLD):  # the Hub's pre-receive check
                    return self._fail(h, 400, f"Your push was rejected because it contains binary files: "
                                              f"{value['path']} must be stored with LFS or Xet")
                files[value["path"]] = data
                lfs.discard(value["path"])
            elif item["key"] == "lfsFile":
                data = self.lfs_objects.get(value["oid"])
                if data is None:
                    return self._fail(h, 400, f"LFS object of {value['path']} was never uploaded")
                files[value["path"]] = data
                lfs.add(value["path"])
            elif item["key"] == "deletedFile":
                if files.pop(value["path"], None) is None:
                    return self._fail(h, 404, "A file with this name doesn't exist")
            elif item["key"] == "deletedFolder":
                files = {p: b for p, b in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
        sha = self.add(key, files, revision=rev, lfs=lfs)
        prefix = "spaces/" if kind == "spaces" else ""
        self._send(h, json.dumps({"commitUrl": f"{self.url}/{prefix}{repo_id}/commit/{sha}", "commitOid": sha}).encode())

    def _lookup(self, h: BaseHTTPRequestHandler, repo_id: str, rev: str) -> tuple[str, dict] | None:
        if repo_id not in self.repos:
            return self._error(h, "RepoNotFound")
        return self.commit(repo_id, rev) or self._error(h, "RevisionNotFound")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, data: bytes, *, head: bool = False, ctype: str = "application/json",
              headers: dict | None = None) -> None:
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if not head:
            h.wfile.write(data)

    @staticmethod
    def _fail(h: BaseHTTPRequestHandler, status: int, message: str, **extra) -> None:
        data = json.dumps({"error": message, **extra}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("X-Error-Message", message)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _error(h: BaseHTTPRequestHandler, code: str, commit: str | None = None) -> None:
        h.send_response(404)
        h.send_header("X-Error-Code", code)
        if commit:
            h.send_header("X-Repo-Commit", commit)
        h.send_header("Content-Length", "0")
        h.end_headers()


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    """The request body, sent with a Content-Length or chunked (httpx streams a file object chunked)."""
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while (size := int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
            parts.append(h.rfile.read(size))
            h.rfile.readline()  # the CRLF after each chunk
        while h.rfile.readline().strip():  # trailers, up to the empty line
            pass
        return b"".join(parts)
    return h.rfile.read(int(h.headers.get("Content-Length") or 0))
