"""Versions stated in more than one place agree; Dockerfiles are hadolint clean."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.unit.test_images import external_bases

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
DOCKERFILES = [ROOT / "images" / "Dockerfile"]


def _pom_property(pom: Path, name: str) -> str:
    value = ET.parse(pom).getroot().find(f"m:properties/m:{name}", POM_NS)
    assert value is not None and value.text, f"{pom} has no {name}"
    return value.text


def _locked_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == package)


def test_spark_connector_matches_pyspark() -> None:
    spark = _pom_property(ROOT / "jars" / "spark" / "pom.xml", "spark.version")
    assert _locked_version("pyspark") == spark
    for dockerfile in DOCKERFILES:
        for tag in re.findall(r"apache/spark:([0-9.]+)-", dockerfile.read_text()):
            assert tag == spark, f"{dockerfile} uses Spark {tag}, pyspark is {spark}"


def test_uv_version_is_the_makefiles() -> None:
    """The Makefile's uv (the dev loop's) is the images' (uv.lock's `images` group)."""
    version = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert version
    assert _locked_version("uv") == version.group(1)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_are_hadolint_clean(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_images_run_as_non_root_with_pinned_bases(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the last USER must not be root"
    for image in external_bases(dockerfile):
        assert ":" in image and ":latest" not in image, image


def test_every_maven_download_is_checked_against_its_checksum() -> None:
    """Maven only warns on a jar whose .sha1 does not match unless told to fail: every mvn
    that downloads (the Makefile's jar caches, the Spark image's connector jars) is told."""
    makefile = (ROOT / "Makefile").read_text()
    (mvn,) = re.findall(r"^MVN := (.*)$", makefile, re.M)
    runs = re.findall(r"^RUN (mvn .*)$", (ROOT / "images" / "Dockerfile").read_text(), re.M)
    assert runs, "the Spark image no longer fetches its jars with mvn: update this test"
    for command in [mvn, *runs]:
        assert "--strict-checksums" in command.split(), command
    assert not re.search(r"^\t+mvn ", makefile, re.M), "call $(MVN), not mvn"
