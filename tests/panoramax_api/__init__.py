"""Panoramax 2.15.1's own API server, for tests that make their data the way Panoramax's users do.

geovisio (the wheel from the package registry, with its dependencies) is installed once into a virtualenv of
its own under ``.ops/cache``; each server is ``flask --app geovisio run`` on 127.0.0.1, with its own
background threads preparing pictures and dispatching upload sets, on a database built by Panoramax's own
migrations and a local storage folder. Pictures are JPEG files with the EXIF a camera writes
(tests/panoramax_api/pictures.py, run by that virtualenv's Python). Nothing of Panoramax is imitated.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.localdb import free_port
from scripts.panoramax import CACHE, GEOVISIO_VERSION

VENV = CACHE / f"geovisio-{GEOVISIO_VERSION}-venv"
PICTURES = Path(__file__).resolve().parent / "pictures.py"
SECRET_KEY = "panoramax-api-test-secret"


def venv() -> Path:
    """Panoramax's own virtualenv (geovisio and its dependencies from the package registry), made once; a
    lock file keeps concurrent test workers from building it twice."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (VENV / ".installed").is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
            proc = subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", f"geovisio=={GEOVISIO_VERSION}"],
                                  capture_output=True, text=True)  # fmt: skip
            if proc.returncode != 0:
                raise RuntimeError(f"pip install geovisio=={GEOVISIO_VERSION} failed: {proc.stderr[-2000:]}")
            (VENV / ".installed").touch()
    return VENV


@dataclass
class Picture:
    name: str  # its file name, as uploaded
    lat: float
    lon: float
    ts: str  # capture time, EXIF style: "2024:01:01 10:00:00"
    pano: bool = False
    heading: int | None = None  # GPSImgDirection, when the camera wrote one


def make_pictures(folder: Path, pictures: list[Picture]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    spec = [{"path": str(folder / p.name), "lat": p.lat, "lon": p.lon, "ts": p.ts, "pano": p.pano,
             "heading": p.heading} for p in pictures]  # fmt: skip
    subprocess.run([str(venv() / "bin" / "python"), str(PICTURES), json.dumps(spec)], check=True)
    return [folder / p.name for p in pictures]


@dataclass
class Panoramax:
    """A running Panoramax API server; ``url`` is its root (``http://127.0.0.1:<port>``)."""

    db_url: str
    storage: Path
    workers: bool = True  # PICTURE_PROCESS_THREADS_LIMIT 1 (pictures prepared, upload sets dispatched) or 0
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)

    def start(self) -> Panoramax:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.storage.mkdir(parents=True, exist_ok=True)
        self.log = self.storage.parent / f"panoramax-{port}.log"
        env = {"PATH": "/usr/bin:/bin", "DB_URL": self.db_url, "FS_URL": str(self.storage),
               "FLASK_SECRET_KEY": SECRET_KEY, "PICTURE_PROCESS_THREADS_LIMIT": "1" if self.workers else "0",
               "API_PICTURES_LICENSE_SPDX_ID": "etalab-2.0",
               "API_PICTURES_LICENSE_URL": "https://www.etalab.gouv.fr/licence-ouverte-open-licence"}  # fmt: skip
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(venv() / "bin" / "flask"), "--app", "geovisio", "run", "--host", "127.0.0.1", "--port", str(port)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Panoramax did not start: {self.log.read_text()[-3000:]}")
            try:
                self.call("GET", "/api")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        raise RuntimeError(f"Panoramax did not answer in 60 s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None,
             data: bytes | None = None, content_type: str = "application/json") -> Any:  # fmt: skip
        """One API call; its JSON answer (None when empty). An HTTP error raises, with Panoramax's message."""
        payload = json.dumps(body).encode() if body is not None else data
        request = urllib.request.Request(self.url + path, data=payload, method=method)
        if payload is not None:
            request.add_header("Content-Type", content_type)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                text = answer.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(text) if text else None

    def upload(self, title: str, files: list[Path], *, sort_method: str | None = None,
               relative_heading: int | None = None, wait: bool = True) -> str:  # fmt: skip
        """An upload set of these files, completed; the id of the collection (sequence) it was dispatched to
        once Panoramax prepared every picture (``wait``), else the upload set's id."""
        body: dict[str, Any] = {"title": title, "estimated_nb_files": len(files)}
        if sort_method:
            body["sort_method"] = sort_method
        if relative_heading is not None:
            body["relative_heading"] = relative_heading
        upload_set = self.call("POST", "/api/upload_sets", body)["id"]
        for path in files:
            boundary = "ops-test-boundary"
            data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
                    f"Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
            self.call("POST", f"/api/upload_sets/{upload_set}/files", data=data,
                      content_type=f"multipart/form-data; boundary={boundary}")  # fmt: skip
        if not wait:
            return str(upload_set)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = self.call("GET", f"/api/upload_sets/{upload_set}")
            collections = state.get("associated_collections") or []
            if state.get("dispatched") and collections and all(c.get("ready") for c in collections):
                return str(collections[0]["id"])
            time.sleep(0.3)
        raise AssertionError(f"upload set {upload_set} was not dispatched in 120 s: {state}")

    def items(self, collection: str) -> list[dict[str, Any]]:
        """The collection's pictures as Panoramax serves them, in its order: id, file name, azimuth."""
        found = self.call("GET", f"/api/collections/{collection}/items?limit=1000")["features"]
        return [{"id": f["id"], "name": f["properties"].get("original_file:name"),
                 "azimuth": f["properties"].get("view:azimuth")} for f in found]  # fmt: skip

    def wait_until_idle(self, timeout_s: float = 120) -> None:
        """Until Panoramax's background threads have nothing left to do (its job queue is empty)."""
        import psycopg

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with psycopg.connect(self.db_url) as c:
                if not c.execute("SELECT count(*) FROM job_queue").fetchone()[0]:  # type: ignore[index]
                    return
            time.sleep(0.3)
        raise AssertionError("Panoramax's job queue did not empty")
