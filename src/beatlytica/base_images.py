"""The upstream images ``images/Dockerfile`` builds on, pinned by digest.

Each is named once, in a global ``ARG <NAME>_IMAGE=<image>:<tag>@sha256:<digest>`` line that a
``FROM ${<NAME>_IMAGE}`` uses: the tag for people, the digest for the builder (a tag can be
moved; a digest names one manifest for good). ``beatlytica pin-images`` asks each image's
registry, over the OCI distribution API, which manifest its tag names now and writes that
digest into the line; ``--check`` verifies every line carries a digest its registry still
serves. The parsing and rewriting are pure functions; :class:`Registry` is the only I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from beatlytica.errors import BeatlyticaError

#: a pinned base image's line in the Dockerfile
ARG_LINE = re.compile(r"^ARG (?P<arg>[A-Z][A-Z0-9_]*_IMAGE)=(?P<reference>\S+)[ \t]*$", re.M)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
DOCKER_HUB = "docker.io"
#: where Docker Hub's registry API answers (docker.io is its name in references)
DOCKER_HUB_API = "registry-1.docker.io"
#: what a registry may answer for a tag: a multi-platform index or one platform's manifest
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
#: registries spoken to over plain HTTP, as Docker does: only this machine
LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")


@dataclass(frozen=True)
class ImageReference:
    """``[registry/]repository:tag[@digest]`` as written, and what the registry API needs."""

    name: str  # as written, without tag and digest: python, apache/spark, ghcr.io/org/x
    tag: str
    digest: str | None

    @property
    def registry(self) -> str:
        first, _, rest = self.name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return first
        return DOCKER_HUB

    @property
    def repository(self) -> str:
        """The repository path on the registry (Docker Hub's official images are library/x)."""
        if self.registry != DOCKER_HUB:
            return self.name.partition("/")[2]
        return self.name if "/" in self.name else f"library/{self.name}"

    @property
    def tagged(self) -> str:
        return f"{self.name}:{self.tag}"

    def pinned(self, digest: str) -> str:
        return f"{self.tagged}@{digest}"

    def __str__(self) -> str:
        return self.pinned(self.digest) if self.digest else self.tagged


def parse_reference(reference: str) -> ImageReference:
    """An image reference that names its tag (``latest`` is refused: it names nothing for long)."""
    rest, _, digest = reference.partition("@")
    if digest and not DIGEST.fullmatch(digest):
        raise BeatlyticaError(f"{reference}: the digest must be sha256:<64 hex digits>")
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        raise BeatlyticaError(f"{reference}: names no tag (write <image>:<tag>)")
    if tag == "latest":
        raise BeatlyticaError(f"{reference}: 'latest' moves; name a version tag")
    if not re.fullmatch(r"[a-z0-9]+([._/:-][a-z0-9]+)*", name) or not name:
        raise BeatlyticaError(f"{reference}: not an image name")
    return ImageReference(name, tag, digest or None)


def base_images(dockerfile: str) -> dict[str, ImageReference]:
    """The Dockerfile's ``ARG <NAME>_IMAGE=`` lines, by ARG name, in order."""
    found = {m["arg"]: parse_reference(m["reference"]) for m in ARG_LINE.finditer(dockerfile)}
    if not found:
        raise BeatlyticaError("no `ARG <NAME>_IMAGE=<image>:<tag>` line")
    return found


def with_digests(dockerfile: str, digests: Mapping[str, str]) -> str:
    """The Dockerfile with each named ARG pinned to its digest (the others untouched)."""
    unknown = set(digests) - set(base_images(dockerfile))
    if unknown:
        raise BeatlyticaError(f"no ARG line for {', '.join(sorted(unknown))}")

    def pin(match: re.Match[str]) -> str:
        if match["arg"] not in digests:
            return match[0]
        digest = digests[match["arg"]]
        if not DIGEST.fullmatch(digest):
            raise BeatlyticaError(f"{match['arg']}: {digest!r} is not a sha256 digest")
        return f"ARG {match['arg']}={parse_reference(match['reference']).pinned(digest)}"

    return ARG_LINE.sub(pin, dockerfile)


def bearer_challenge(header: str) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer realm="…",service="…",scope="…"``."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "bearer":
        raise BeatlyticaError(f"the registry asks for {scheme} authentication; only Bearer")
    found = dict(re.findall(r'(\w+)="([^"]*)"', params))
    if "realm" not in found:
        raise BeatlyticaError(f"a Bearer challenge without a realm: {header}")
    return found


def manifest_digest(manifest: bytes) -> str:
    """The digest a registry names a manifest by: the sha256 of its bytes as served."""
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


Opener = Callable[[urllib.request.Request], "urllib.response.addinfourl"]


def _default_opener(request: urllib.request.Request) -> urllib.response.addinfourl:
    response: urllib.response.addinfourl = urllib.request.urlopen(request, timeout=30)
    return response


class Registry:
    """Reads digests over the OCI distribution API, anonymously (Docker Hub and ghcr.io hand
    out pull tokens for public images to anyone who asks)."""

    def __init__(self, opener: Opener = _default_opener) -> None:
        self._open = opener
        self._tokens: dict[tuple[str, str], str] = {}

    @staticmethod
    def base_url(image: ImageReference) -> str:
        host = DOCKER_HUB_API if image.registry == DOCKER_HUB else image.registry
        scheme = "http" if LOOPBACK.match(host) else "https"
        return f"{scheme}://{host}/v2/{image.repository}"

    def _request(self, image: ImageReference, reference: str) -> tuple[int, dict[str, str], bytes]:
        url = f"{self.base_url(image)}/manifests/{reference}"
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        token = self._tokens.get((image.registry, image.repository))
        for attempt in range(2):
            if token:
                headers["Authorization"] = f"Bearer {token}"
            request = urllib.request.Request(url, headers=headers, method="GET")
            try:
                with self._open(request) as response:
                    status = response.status or 200
                    return status, dict(response.headers.items()), response.read()
            except urllib.error.HTTPError as e:
                if e.code == 401 and attempt == 0 and "WWW-Authenticate" in e.headers:
                    token = self._token(image, e.headers["WWW-Authenticate"])
                    continue
                return e.code, dict(e.headers.items()), e.read()
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise BeatlyticaError(f"cannot reach {url}: {reason}") from e
        raise AssertionError("unreachable")

    def _token(self, image: ImageReference, challenge: str) -> str:
        params = bearer_challenge(challenge)
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        query.setdefault("scope", f"repository:{image.repository}:pull")
        url = f"{params['realm']}?{urllib.parse.urlencode(query)}"
        try:
            with self._open(urllib.request.Request(url)) as response:
                body = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise BeatlyticaError(f"no pull token for {image.tagged} from {url}: {e}") from e
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise BeatlyticaError(f"{url} answered no token")
        self._tokens[(image.registry, image.repository)] = token
        return token

    def digest(self, image: ImageReference) -> str:
        """The digest of the manifest (or multi-platform index) the tag names now."""
        status, headers, body = self._request(image, image.tag)
        if status == 404:
            raise BeatlyticaError(f"{image.tagged}: no such tag on {image.registry}")
        if status != 200:
            raise BeatlyticaError(f"{image.tagged}: {image.registry} answered HTTP {status}")
        computed = manifest_digest(body)
        stated = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
        if stated and stated != computed:
            raise BeatlyticaError(
                f"{image.tagged}: the registry says {stated}, its manifest hashes to {computed}"
            )
        return computed

    def serves(self, image: ImageReference, digest: str) -> bool:
        """Whether the registry still serves the manifest ``digest`` (and it is that one)."""
        status, _, body = self._request(image, digest)
        if status == 404:
            return False
        if status != 200:
            where = image.pinned(digest)
            raise BeatlyticaError(f"{where}: {image.registry} answered HTTP {status}")
        return manifest_digest(body) == digest


@dataclass(frozen=True)
class Pinned:
    arg: str
    image: ImageReference
    digest: str

    @property
    def changed(self) -> bool:
        return self.image.digest != self.digest


def pin(dockerfile: Path, registry: Registry) -> list[Pinned]:
    """Resolve every base image's tag to its digest now and write them into ``dockerfile``
    (all or nothing: a tag that cannot be resolved leaves the file as it was)."""
    text = dockerfile.read_text()
    found = [Pinned(arg, image, registry.digest(image)) for arg, image in base_images(text).items()]
    updated = with_digests(text, {p.arg: p.digest for p in found})
    if updated != text:
        dockerfile.write_text(updated)
    return found


def check(dockerfile: Path, registry: Registry) -> list[str]:
    """What is wrong with the pins: a base image without a digest, or one its registry no longer
    serves. Empty when every pin holds."""
    problems = []
    for arg, image in base_images(dockerfile.read_text()).items():
        if image.digest is None:
            problems.append(f"{arg}={image}: not pinned by digest")
        elif not registry.serves(image, image.digest):
            problems.append(f"{arg}={image}: {image.registry} does not serve this digest")
    return problems
