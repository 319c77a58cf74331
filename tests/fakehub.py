"""A local fake of the Hugging Face Hub HTTP API, enough for huggingface_hub 2.4 to download and upload.

Endpoints (model repos only), as read from huggingface_hub's source:
  GET  /api/models/{repo}/revision/{rev}  -> {"id", "sha", "siblings"}    HfApi.model_info (snapshot_download)
  GET  /api/models/{repo}/tree/{rev}      -> [{"type", "path", "size", "oid"}]  HfApi.list_repo_tree
  HEAD/GET /{repo}/resolve/{rev}/{file}   -> bytes + Content-Length, ETag, X-Repo-Commit (all required)
  POST /api/repos/create, /api/validate-yaml, /api/models/{repo}/preupload/{rev},
       /api/models/{repo}/commit/{rev}    -> create_repo + upload_folder with small "regular" files
Errors are 404 + X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound, as the Hub sends them.
A revision is a branch name or a 40-hex commit sha; each commit holds its own files.
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


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}  # repo_id -> {"refs": {branch: sha}, "commits": {sha: {path: bytes}}}
        self.requests: list[str] = []  # "METHOD path", in arrival order
        self._server: ThreadingHTTPServer | None = None

    def add(self, repo_id: str, files: dict[str, bytes] | str | Path, revision: str = "main") -> str:
        """Commit `files` (a dict, or every file of a folder) to `revision` of `repo_id`; returns the sha."""
        if not isinstance(files, dict):
            files = {p.name: p.read_bytes() for p in sorted(Path(files).iterdir()) if p.is_file()}
        sha = hashlib.sha1(repr(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items())).encode()
                           + repo_id.encode() + revision.encode()).hexdigest()
        repo = self.repos.setdefault(repo_id, {"refs": {}, "commits": {}})
        repo["commits"][sha], repo["refs"][revision] = dict(files), sha
        return sha

    def commit(self, repo_id: str, rev: str) -> tuple[str, dict[str, bytes]] | None:
        repo = self.repos[repo_id]
        sha = repo["refs"].get(rev, rev if rev in repo["commits"] else None)
        return None if sha is None else (sha, repo["commits"][sha])

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
                hub._handle(self, body=self.rfile.read(int(self.headers.get("Content-Length") or 0)))

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
        if h.command == "POST":
            return self._post(h, path, body)
        if m := re.fullmatch(rf"/api/models/{REPO}/(?P<kind>revision|tree)/{REV}", path):
            found = self._lookup(h, m["repo"], m["rev"])
            if found:
                sha, files = found
                if m["kind"] == "revision":
                    data = {"id": m["repo"], "sha": sha, "siblings": [{"rfilename": f} for f in files]}
                else:
                    data = [{"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                            for f, b in files.items()]
                self._send(h, json.dumps(data).encode(), head=head)
        elif m := re.fullmatch(rf"/{REPO}/resolve/{REV}/(?P<file>.+)", path):
            found = self._lookup(h, m["repo"], m["rev"])
            if found and m["file"] not in found[1]:
                self._error(h, "EntryNotFound", commit=found[0])
            elif found:
                data = found[1][m["file"]]
                self._send(h, data, head=head, ctype="application/octet-stream",
                           headers={"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": found[0]})
        else:
            self._error(h, "RepoNotFound")

    def _post(self, h: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        if path == "/api/repos/create":
            p = json.loads(body)
            repo_id = f"{p['organization']}/{p['name']}" if p.get("organization") else p["name"]
            self.repos.setdefault(repo_id, {"refs": {}, "commits": {}})
            return self._send(h, json.dumps({"url": f"{self.url}/{repo_id}"}).encode())
        if path == "/api/validate-yaml":
            return self._send(h, b'{"warnings": [], "errors": []}')
        m = re.fullmatch(rf"/api/models/{REPO}/(?P<kind>preupload|commit)/{REV}", path)
        if not m or m["repo"] not in self.repos:
            return self._error(h, "RepoNotFound")
        if m["kind"] == "preupload":  # every file is a plain git blob: no LFS/Xet protocol needed
            files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                     for f in json.loads(body)["files"]]
            return self._send(h, json.dumps({"files": files}).encode())
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        old = self.commit(m["repo"], m["rev"])
        files = dict(old[1]) if old else {}
        for item in lines:
            if item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
        sha = self.add(m["repo"], files, revision=m["rev"])
        self._send(h, json.dumps({"commitUrl": f"{self.url}/{m['repo']}/commit/{sha}", "commitOid": sha}).encode())

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
    def _error(h: BaseHTTPRequestHandler, code: str, commit: str | None = None) -> None:
        h.send_response(404)
        h.send_header("X-Error-Code", code)
        if commit:
            h.send_header("X-Repo-Commit", commit)
        h.send_header("Content-Length", "0")
        h.end_headers()
