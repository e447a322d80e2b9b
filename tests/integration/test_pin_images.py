"""`beatlytica pin-images` against a real OCI registry: go-containerregistry's (`crane registry
serve`, installed by `make tools`) on loopback, holding images pushed over the distribution API
here. Its digests are checked against `crane digest`, the registry's own client. Docker Hub's
token dance is played by a loopback proxy in front of it (Docker Hub cannot be reached here);
the exact requests sent to Docker Hub are asserted in tests/unit/test_base_images.py.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from beatlytica.cli import main
from beatlytica.kafka_local import free_port
from tests.helpers import ROOT, serving

CRANE = ROOT / ".tools" / "bin" / "crane"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    """A registry on a free loopback port; yields its host:port."""
    assert CRANE.exists(), f"{CRANE} is missing: run `make tools`"
    address = f"127.0.0.1:{free_port()}"
    with serving([str(CRANE), "registry", "serve", "--address", address], f"http://{address}/v2/"):
        yield address


def _put(url: str, body: bytes, content_type: str, method: str = "PUT") -> urllib.request.Request:
    return urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": content_type}
    )


def push(registry: str, repository: str, tag: str, created: str, index: bool) -> str:
    """Push a one-platform image (an empty-layered config) under ``tag``, as a multi-platform
    index when ``index``; returns the digest of what the tag names."""
    base = f"http://{registry}/v2/{repository}"
    rootfs = {"type": "layers", "diff_ids": []}
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "created": created, "rootfs": rootfs}
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with urllib.request.urlopen(_put(f"{base}/blobs/uploads/", b"", "", "POST")) as started:
        location = started.headers["Location"]
    upload = location if location.startswith("http") else f"http://{registry}{location}"
    separator = "&" if "?" in upload else "?"
    urllib.request.urlopen(
        _put(f"{upload}{separator}digest={config_digest}", config, "application/octet-stream")
    ).close()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    urllib.request.urlopen(
        _put(f"{base}/manifests/{tag if not index else digest}", manifest, OCI_MANIFEST)
    ).close()
    if not index:
        return digest
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()
    urllib.request.urlopen(_put(f"{base}/manifests/{tag}", body, OCI_INDEX)).close()
    return "sha256:" + hashlib.sha256(body).hexdigest()


def crane_digest(reference: str) -> str:
    """What the registry's own client says the reference's digest is."""
    out = subprocess.run(
        [str(CRANE), "digest", "--insecure", reference], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


DOCKERFILE = """\
# a Dockerfile in the shape of images/Dockerfile
ARG PYTHON_IMAGE={python}
ARG TOOL_IMAGE={tool}

FROM ${{PYTHON_IMAGE}} AS python
FROM ${{TOOL_IMAGE}} AS tool
FROM python AS app
COPY --from=tool /tool /usr/local/bin/tool
"""


def write(tmp_path: Path, python: str, tool: str) -> Path:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE.format(python=python, tool=tool))
    return dockerfile


def test_pin_writes_the_digest_each_tag_names_and_a_rerun_changes_nothing(
    registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = f"{registry}/library/python:3.11.14-slim-bookworm"
    tool = f"{registry}/org/tool:1.0"
    index = push(registry, "library/python", "3.11.14-slim-bookworm", "2026-11-01T00:00:00Z", True)
    old = push(registry, "org/tool", "1.0", "2026-10-01T00:00:00Z", False)
    moved = push(registry, "org/tool", "1.0", "2026-11-01T00:00:00Z", False)  # the tag moved
    assert old != moved and crane_digest(python) == index and crane_digest(tool) == moved
    dockerfile = write(tmp_path, python, f"{tool}@{old}")

    assert main(["pin-images", "--dockerfile", str(dockerfile)]) == 0
    assert dockerfile.read_text() == DOCKERFILE.format(
        python=f"{python}@{index}", tool=f"{tool}@{moved}"
    )
    out = capsys.readouterr().out
    assert f"PYTHON_IMAGE={python}@{index} (was the tag alone)" in out
    assert f"TOOL_IMAGE={tool}@{moved} (was {old})" in out

    pinned = dockerfile.read_text()
    assert main(["pin-images", "--dockerfile", str(dockerfile)]) == 0
    assert dockerfile.read_text() == pinned
    assert "(was" not in capsys.readouterr().out
    assert main(["pin-images", "--dockerfile", str(dockerfile), "--check"]) == 0


def test_check_fails_on_a_tag_alone_or_a_digest_the_registry_does_not_serve(
    registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = push(registry, "org/check", "2.0", "2026-11-02T00:00:00Z", True)
    gone = "sha256:" + "0" * 64
    dockerfile = write(tmp_path, f"{registry}/org/check:2.0", f"{registry}/org/check:2.0@{gone}")
    before = dockerfile.read_text()
    assert main(["pin-images", "--dockerfile", str(dockerfile), "--check"]) == 2
    err = capsys.readouterr().err
    assert f"PYTHON_IMAGE={registry}/org/check:2.0: not pinned by digest" in err
    assert f"TOOL_IMAGE={registry}/org/check:2.0@{gone}: {registry} does not serve" in err
    assert dockerfile.read_text() == before  # --check never writes

    dockerfile = write(
        tmp_path, f"{registry}/org/check:2.0@{digest}", f"{registry}/org/check:2.0@{digest}"
    )
    assert main(["pin-images", "--dockerfile", str(dockerfile), "--check"]) == 0


def test_an_unknown_tag_is_named_and_leaves_the_file_as_it_was(
    registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    push(registry, "org/known", "1.0", "2026-11-03T00:00:00Z", True)
    dockerfile = write(tmp_path, f"{registry}/org/known:1.0", f"{registry}/org/known:9.9")
    before = dockerfile.read_text()
    assert main(["pin-images", "--dockerfile", str(dockerfile)]) == 2
    assert f"{registry}/org/known:9.9: no such tag on {registry}" in capsys.readouterr().err
    assert dockerfile.read_text() == before  # all or nothing


class _TokenProxy(http.server.BaseHTTPRequestHandler):
    """Docker Hub's way in front of the registry: manifests need a Bearer token, which the
    realm hands out for a service and scope."""

    upstream = ""
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/token?"):
            body = json.dumps({"token": "pull-token"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.headers.get("Authorization") != "Bearer pull-token":
            realm = f"http://{self.headers['Host']}/token"
            repository = self.path.split("/v2/", 1)[1].rsplit("/manifests/", 1)[0]
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate",
                f'Bearer realm="{realm}",service="test-registry",'
                f'scope="repository:{repository}:pull"',
            )
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        request = urllib.request.Request(
            f"http://{self.upstream}{self.path}", headers={"Accept": self.headers["Accept"]}
        )
        try:
            with urllib.request.urlopen(request) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        self.send_response(status)
        for name in ("Content-Type", "Docker-Content-Digest"):
            if headers.get(name):
                self.send_header(name, headers[name])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_registry_that_asks_for_a_bearer_token_gets_one_for_the_pull_scope(
    registry: str, tmp_path: Path
) -> None:
    digest = push(registry, "library/guarded", "1.0", "2026-11-04T00:00:00Z", True)
    _TokenProxy.upstream, _TokenProxy.seen = registry, []
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{proxy.server_address[1]}"
        reference = f"{address}/library/guarded:1.0"
        dockerfile = write(tmp_path, reference, reference)
        assert main(["pin-images", "--dockerfile", str(dockerfile)]) == 0
    finally:
        proxy.shutdown()
    assert dockerfile.read_text() == DOCKERFILE.format(
        python=f"{reference}@{digest}", tool=f"{reference}@{digest}"
    )
    manifest = "/v2/library/guarded/manifests/1.0"
    token = "/token?service=test-registry&scope=repository%3Alibrary%2Fguarded%3Apull"
    # challenged once, one token, then every request carries it (the second image reuses it)
    assert _TokenProxy.seen == [
        (manifest, None),
        (token, None),
        (manifest, "Bearer pull-token"),
        (manifest, "Bearer pull-token"),
    ]
