"""The base images of images/Dockerfile: references parsed and rewritten, the pins the
Dockerfile holds, and the exact requests `beatlytica pin-images` sends to Docker Hub (which
cannot be reached here; tests/integration/test_pin_images.py runs it against a real registry).
"""

from __future__ import annotations

import email.message
import io
import re
import urllib.error
import urllib.request
import urllib.response

import pytest

from beatlytica.base_images import (
    MANIFEST_TYPES,
    ImageReference,
    Registry,
    base_images,
    bearer_challenge,
    parse_reference,
    with_digests,
)
from beatlytica.errors import BeatlyticaError
from tests.helpers import ROOT

DOCKERFILE = ROOT / "images" / "Dockerfile"
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64

#: base images not yet pinned by digest, and why (docs/security.md says the same): no registry
#: is reachable from this machine to read their digests, and none was found published with the
#: tag; `make pin-base-images` on a machine that reaches the registries pins them
NOT_YET_PINNED = {"SPARK_IMAGE", "AIRFLOW_IMAGE"}


#: reference -> (registry, repository on it, tag, digest)
REFERENCES = {
    "python:3.11.14-slim-bookworm": ("docker.io", "library/python", "3.11.14-slim-bookworm", None),
    f"apache/spark:4.2.0-java17@{A}": ("docker.io", "apache/spark", "4.2.0-java17", A),
    "ghcr.io/kubeflow/spark-operator/controller:2.5.2": (
        "ghcr.io",
        "kubeflow/spark-operator/controller",
        "2.5.2",
        None,
    ),
    f"127.0.0.1:5000/org/x:1.0@{B}": ("127.0.0.1:5000", "org/x", "1.0", B),
    "localhost/x:1": ("localhost", "x", "1", None),
}


@pytest.mark.parametrize("reference", REFERENCES)
def test_references_name_their_registry_repository_tag_and_digest(reference: str) -> None:
    image = parse_reference(reference)
    assert (image.registry, image.repository, image.tag, image.digest) == REFERENCES[reference]
    assert str(image) == reference


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("python", "names no tag"),
        ("127.0.0.1:5000/org/x", "names no tag"),
        ("python:latest", "'latest' moves"),
        ("python:3.11@sha256:abc", "sha256:<64 hex digits>"),
        (f"Python:3.11@{A}", "not an image name"),
    ],
)
def test_a_reference_without_a_fixed_tag_or_with_a_bad_digest_is_refused(
    reference: str, problem: str
) -> None:
    with pytest.raises(BeatlyticaError, match=re.escape(problem)):
        parse_reference(reference)


def test_digests_are_written_into_their_arg_lines_only() -> None:
    text = (
        "# ARG PYTHON_IMAGE=python:3.10 in a comment stays\n"
        f"ARG PYTHON_IMAGE=python:3.11-slim@{A}\n"
        "ARG TOOL_IMAGE=ghcr.io/o/tool:1.0\n"
        "FROM ${PYTHON_IMAGE} AS python\n"
    )
    assert with_digests(text, {"PYTHON_IMAGE": B, "TOOL_IMAGE": A}) == (
        "# ARG PYTHON_IMAGE=python:3.10 in a comment stays\n"
        f"ARG PYTHON_IMAGE=python:3.11-slim@{B}\n"
        f"ARG TOOL_IMAGE=ghcr.io/o/tool:1.0@{A}\n"
        "FROM ${PYTHON_IMAGE} AS python\n"
    )
    assert with_digests(text, {}) == text
    with pytest.raises(BeatlyticaError, match="no ARG line for OTHER_IMAGE"):
        with_digests(text, {"OTHER_IMAGE": A})
    with pytest.raises(BeatlyticaError, match="not a sha256 digest"):
        with_digests(text, {"TOOL_IMAGE": "sha256:short"})


def test_the_dockerfile_names_each_upstream_image_once_in_an_arg_pinned_by_digest() -> None:
    """Every external FROM is a base-image ARG, each used by one FROM; each is pinned by
    digest but for NOT_YET_PINNED, which docs/security.md names as not done."""
    text = DOCKERFILE.read_text()
    images = base_images(text)
    assert list(images) == ["PYTHON_IMAGE", "MAVEN_IMAGE", "SPARK_IMAGE", "AIRFLOW_IMAGE"]
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", text, re.M))
    externals = [b for b in re.findall(r"^FROM (\S+)", text, re.M) if b not in stages]
    assert externals == [f"${{{arg}}}" for arg in images]
    for arg, image in images.items():
        assert (image.digest is None) == (arg in NOT_YET_PINNED), f"{arg}={image}"
    security = (ROOT / "docs" / "security.md").read_text()
    not_done = security.split("## Not done", 1)[1]
    for arg in NOT_YET_PINNED:
        assert images[arg].tagged in not_done, arg


def test_the_local_cluster_builds_on_the_tags_of_the_base_images() -> None:
    """images.sh passes each base-image ARG by tag alone (the stand-ins carry the tags)."""
    script = (ROOT / "k8s" / "local" / "images.sh").read_text()
    assert "sed -n 's/^ARG \\([A-Z_]*_IMAGE=[^ ]*\\)$/\\1/p'" in script
    assert '--build-arg "${arg%@sha256:*}"' in script


def test_bearer_challenges_are_read_and_other_schemes_refused() -> None:
    assert bearer_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/python:pull"'
    ) == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/python:pull",
    }
    with pytest.raises(BeatlyticaError, match="only Bearer"):
        bearer_challenge('Basic realm="x"')


class Recorder:
    """An opener that records each request and answers from a script of responses."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = answers
        self.requests: list[urllib.request.Request] = []

    def __call__(self, request: urllib.request.Request) -> urllib.response.addinfourl:
        self.requests.append(request)
        status, headers, body = self.answers.pop(0)
        message = email.message.Message()
        for key, value in headers.items():
            message[key] = value
        if status >= 400:
            raise urllib.error.HTTPError(
                request.full_url, status, "error", message, io.BytesIO(body)
            )
        return urllib.response.addinfourl(io.BytesIO(body), message, request.full_url, status)


def test_docker_hub_is_asked_for_a_pull_token_then_the_tags_manifest() -> None:
    index = b'{"schemaVersion":2}'
    digest = "sha256:" + __import__("hashlib").sha256(index).hexdigest()
    challenge = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/python:pull"'
    )
    opener = Recorder(
        [
            (401, {"WWW-Authenticate": challenge}, b""),
            (200, {}, b'{"token": "t0k"}'),
            (200, {"Docker-Content-Digest": digest}, index),
        ]
    )
    image = parse_reference("python:3.11.14-slim-bookworm")
    assert Registry(opener).digest(image) == digest
    manifest = "https://registry-1.docker.io/v2/library/python/manifests/3.11.14-slim-bookworm"
    token = (
        "https://auth.docker.io/token?service=registry.docker.io"
        "&scope=repository%3Alibrary%2Fpython%3Apull"
    )
    assert [r.full_url for r in opener.requests] == [manifest, token, manifest]
    first, _, last = opener.requests
    assert first.get_header("Accept") == ", ".join(MANIFEST_TYPES)
    assert first.get_header("Authorization") is None
    assert last.get_header("Authorization") == "Bearer t0k"


def test_a_manifest_that_does_not_hash_to_the_stated_digest_is_refused() -> None:
    opener = Recorder([(200, {"Docker-Content-Digest": A}, b"{}")])
    with pytest.raises(BeatlyticaError, match="its manifest hashes to sha256:"):
        Registry(opener).digest(parse_reference("ghcr.io/o/tool:1.0"))
    assert opener.requests[0].full_url == "https://ghcr.io/v2/o/tool/manifests/1.0"


def test_an_unreachable_registry_is_named() -> None:
    def refuse(request: urllib.request.Request) -> urllib.response.addinfourl:
        raise urllib.error.URLError("Connection refused")

    with pytest.raises(
        BeatlyticaError, match=re.escape("cannot reach https://registry-1.docker.io/v2/")
    ):
        Registry(refuse).digest(ImageReference("python", "3.11", None))
