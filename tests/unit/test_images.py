"""The images: one Dockerfile with a target per image, each a thin `beatlytica` command on
pinned bases named once, built from the repository root with only what they copy, and agreeing
with the chart, the lock and the pod-task factory on versions, paths and users. (hadolint:
tests/unit/test_pins.py.)
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT
from tests.unit.test_helm_charts import (
    CHART,
    environment_values,
    load_yaml,
    one,
    rendered,
    settings_configmaps,
)

IMAGES = ("producer", "spark", "loader", "dbt", "airflow", "dashboard")
#: the pyproject extras each image installs from uv.lock (Spark brings pyspark itself)
EXTRAS = {
    "producer": ("producer",),
    "loader": ("loader",),
    "dbt": ("dbt",),
    "airflow": ("airflow",),
    "dashboard": ("dashboard",),
}
#: the `beatlytica` subcommands each image runs (the chart, the DAGs' pod tasks)
COMMANDS = {
    "producer": {"generate"},
    "loader": {"load", "reconcile"},
    "dbt": {"dbt", "dbt-docs"},
    "dashboard": {"dashboard"},
}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(dockerfile: Path) -> list[Stage]:
    """The stages of a Dockerfile, each with its instructions (continuations joined); a FROM
    that names a global ARG (`FROM ${PYTHON_IMAGE}`) names its default, as the builder reads it."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stages: list[Stage] = []
    arguments: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = args.partition("=")
            arguments[name] = default
        elif keyword == "FROM":
            parts = args.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m[1]], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


DOCKERFILE = ROOT / "images" / "Dockerfile"


def external_bases(dockerfile: Path) -> list[str]:
    """The images a Dockerfile's stages start FROM that are not its own stages, in order."""
    parsed = parse(dockerfile)
    names = {stage.name for stage in parsed}
    return [stage.base for stage in parsed if stage.base not in names]


def stages() -> dict[str, Stage]:
    """The named stages of images/Dockerfile."""
    return {stage.name: stage for stage in parse(DOCKERFILE) if stage.name}


def resolved(image: str) -> Stage:
    """The target ``image`` as the builder sees it: its external base image, and the
    instructions of every stage it starts FROM, oldest first (ENV, USER, ENTRYPOINT inherit)."""
    named = stages()
    chain = [named[image]]
    while chain[-1].base in named:
        chain.append(named[chain[-1].base])
    instructions = [i for stage in reversed(chain) for i in stage.instructions]
    return Stage(chain[-1].base, image, instructions)


def reachable(image: str) -> list[Stage]:
    """Every stage the target ``image`` builds: the stages it starts FROM and copies from."""
    named = stages()
    seen: dict[str, Stage] = {}
    todo = [image]
    while todo:
        name = todo.pop()
        if name in seen or name not in named:
            continue
        seen[name] = stage = named[name]
        todo.append(stage.base)
        for args in stage.all("COPY"):
            todo += [t.removeprefix("--from=") for t in args.split() if t.startswith("--from=")]
    return list(seen.values())


def env_of(stage: Stage) -> dict[str, str]:
    env = {}
    for args in stage.all("ENV"):
        for token in shlex.split(args):
            key, _, value = token.partition("=")
            env[key] = value
    return env


def copies(stages: list[Stage]) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context."""
    out = []
    for stage in stages:
        for args in stage.all("COPY"):
            tokens = [t for t in shlex.split(args) if not t.startswith("--chown")]
            if any(t.startswith("--from") for t in tokens):
                continue
            out.append((tokens[:-1], tokens[-1]))
    return out


def test_one_dockerfile_with_a_target_per_image() -> None:
    found = {p for p in (ROOT / "images").rglob("Dockerfile") if "standins" not in p.parts}
    assert found == {DOCKERFILE}
    assert set(IMAGES) <= set(stages())


def test_each_base_image_is_named_once() -> None:
    """One Python, one of each upstream image: every other stage starts FROM a stage. (Their
    digests: tests/unit/test_base_images.py.)"""
    external = external_bases(DOCKERFILE)
    assert len(external) == len(set(external)), external
    assert stages()["python"].base.startswith("python:")


def test_uv_comes_from_the_lock_with_its_hashes() -> None:
    """No uv image: the build stage installs uv's wheel from PyPI, the version and the hashes
    of pyproject's `images` group in uv.lock, and every image's uv is that one."""
    build = " ".join(stages()["build"].all("RUN"))
    assert "python3 locked_requirement.py uv.lock uv > /tmp/uv.txt" in build
    assert re.search(r"pip install .*--only-binary=:all: +--require-hashes -r /tmp/uv.txt", build)
    assert "ghcr.io/astral-sh/uv" not in DOCKERFILE.read_text()
    from_build = [
        args.removeprefix("--from=build ")
        for args in stages()["airflow"].all("COPY")
        if args.startswith("--from=build ")
    ]
    assert from_build == ["/opt/uv/bin/uv /opt/uv/uv"]
    group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["images"]
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (uv,) = [p for p in lock["package"] if p["name"] == "uv"]
    assert group == [f"uv=={uv['version']}"]
    result = subprocess.run(
        ["python3", str(ROOT / "images" / "locked_requirement.py"), str(ROOT / "uv.lock"), "uv"],
        capture_output=True,
        text=True,
        check=True,
    )
    hashes = [f"--hash={wheel['hash']}" for wheel in uv["wheels"]]
    assert len(hashes) > 1 and result.stdout.split() == [f"uv=={uv['version']}", *hashes]


@pytest.mark.parametrize("image", IMAGES)
def test_the_image_runs_as_a_numeric_non_root_user(image: str) -> None:
    users = resolved(image).all("USER")
    assert users and users[-1].isdigit() and int(users[-1]) > 0


@pytest.mark.parametrize("image", IMAGES)
def test_python_comes_from_the_lock_with_its_hashes(image: str) -> None:
    """Each image installs its extra (Spark: none, pyspark comes from Spark) from uv.lock with
    the lock's hashes required, then the package's wheel without dependencies."""
    runs = [" ".join(stage.all("RUN")) for stage in reachable(image)]
    extras = " ".join(f"--extra {extra}" for extra in EXTRAS.get(image, ()))
    export = re.sub(" +", " ", f"uv export --frozen --no-dev {extras} --no-emit-project -o ")
    assert any(export in run for run in runs), export
    assert any("pip install" in r and "--require-hashes -r" in r for r in runs)
    assert not any("--no-hashes" in run for run in runs)
    assert any(re.search(r"pip install (--no-cache )?--no-deps /\S*dist/\S*\.whl", r) for r in runs)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(EXTRAS.get(image, ())) <= set(declared["optional-dependencies"])


def test_python_bases_are_the_projects_python() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11,<3.12" in requires
    python = stages()["python"].base
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", python), python
    for image in IMAGES:
        base = resolved(image).base
        if image == "airflow":
            assert base.startswith("apache/airflow:") and base.endswith("-python3.11"), base
        else:
            assert base == python, image


@pytest.mark.parametrize("image", sorted(COMMANDS))
def test_entrypoint_is_a_thin_beatlytica_command(image: str) -> None:
    from beatlytica.cli import build_parser

    final = resolved(image)
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["beatlytica"]
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert COMMANDS[image] <= set(subparsers.choices)
    default = json.loads(final.all("CMD")[-1])
    assert default[0] in COMMANDS[image]


def test_dashboard_image_serves_the_charts_port_as_the_charts_user() -> None:
    """The dashboard image runs `beatlytica dashboard --serve` on the chart's port, as the
    chart's numeric user, headless, with HOME and its scratch under /tmp (the chart's emptyDir
    on a read-only root filesystem), and holds what the app needs for both warehouses."""
    from beatlytica.cli import build_parser

    final = resolved("dashboard")
    args = build_parser().parse_args(json.loads(final.all("CMD")[-1]))
    deployment = one(rendered("kind"), "Deployment", "beatlytica-dashboard")
    pod = deployment["spec"]["template"]["spec"]
    chart_args = build_parser().parse_args(pod["containers"][0]["args"])
    assert (args.command, args.serve) == ("dashboard", True)
    assert (chart_args.command, chart_args.serve) == ("dashboard", True)
    assert args.port == chart_args.port == int(final.all("EXPOSE")[-1])
    assert final.all("USER")[-1] == str(pod["securityContext"]["runAsUser"]) == "10001"
    env = env_of(final)
    assert env["HOME"].startswith("/tmp") and env["BEATLYTICA_HOME"].startswith("/tmp/")
    assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]
    assert env["STREAMLIT_SERVER_HEADLESS"] == "true"
    assert env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {"streamlit", "duckdb", "google-cloud-bigquery"}
    installed = {
        re.split(r"[<>=!~\[; ]", requirement)[0]
        for extra in EXTRAS["dashboard"]
        for requirement in declared["optional-dependencies"][extra]
    }
    assert wanted <= installed


def test_producer_default_command_is_the_realtime_kafka_generator() -> None:
    from beatlytica.cli import build_parser

    default = json.loads(resolved("producer").all("CMD")[-1])
    args = build_parser().parse_args(default)
    assert args.sink == "kafka" and args.realtime


def test_pod_task_images_match_the_factory() -> None:
    """The DAGs' factory (src/beatlytica/orchestration.py) runs `beatlytica` in
    <registry>/beatlytica-<image>:<tag> from the chart's pod template of that image, whose user
    is the chart's images.uid, the image's USER; read as text, since importing it imports
    Airflow."""
    source = (ROOT / "src" / "beatlytica" / "orchestration.py").read_text()
    assert 'f"{settings.image_registry}/beatlytica-{image}:{settings.image_tag}"' in source
    assert '"cmds": ["beatlytica"]' in source
    templates = one(rendered("kind"), "ConfigMap", "beatlytica-pod-templates")["data"]
    images = {key.removesuffix(".yaml") for key in templates}
    assert images and images <= set(IMAGES)
    for image in images:
        pod = yaml.safe_load(templates[f"{image}.yaml"])
        user = str(pod["spec"]["securityContext"]["runAsUser"])
        assert resolved(image).all("USER")[-1] == user, image


def test_chart_users_match_the_images() -> None:
    docs = rendered("kind")
    uid = str(load_yaml(CHART / "values.yaml")["images"]["uid"])
    for python_image in ("producer", "loader", "dbt", "dashboard"):
        assert resolved(python_image).all("USER")[-1] == uid, python_image
    producer = one(docs, "StatefulSet", "beatlytica-producer")["spec"]["template"]["spec"]
    dashboard = one(docs, "Deployment", "beatlytica-dashboard")["spec"]["template"]["spec"]
    assert str(producer["securityContext"]["runAsUser"]) == uid
    assert str(dashboard["securityContext"]["runAsUser"]) == uid
    app = one(docs, "SparkApplication", "beatlytica-stream")["spec"]
    spark_user = resolved("spark").all("USER")[-1]
    assert str(app["driver"]["podSecurityContext"]["runAsUser"]) == spark_user
    # the Airflow chart runs its pods as its `uid` value, 50000 unless set
    assert "uid" not in environment_values("kind")["airflow"]
    assert resolved("airflow").all("USER")[-1] == "50000"


def test_spark_image_holds_the_applications_main_file() -> None:
    app = one(rendered("kind"), "SparkApplication", "beatlytica-stream")["spec"]
    main = app["mainApplicationFile"].removeprefix("local://")
    assert (["spark_jobs/stream_events.py"], main) in copies(reachable("spark"))
    # Spark itself comes from the official image of the application's Spark version, and the
    # runtime is the Python every other image runs
    assert stages()["spark-dist"].base.startswith(f"apache/spark:{app['sparkVersion']}-")
    assert "--from=spark-dist /opt/spark/ /opt/spark/" in stages()["spark"].all("COPY")
    assert resolved("spark").base == resolved("producer").base


def test_dbt_image_holds_the_project_where_the_settings_say() -> None:
    env = env_of(resolved("dbt"))
    assert (["dbt/"], "/opt/beatlytica/dbt/") in copies(reachable("dbt"))
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    data = settings_configmaps(rendered("gke"))[0]["data"]
    assert env["BEATLYTICA_DBT_PROJECT_DIR"] == data["BEATLYTICA_DBT_PROJECT_DIR"]
    assert env["BEATLYTICA_HOME"] == data["BEATLYTICA_HOME"]
    profiles = (ROOT / "dbt" / "profiles.yml").read_text()
    assert "method: oauth" in profiles and "keyfile" not in profiles


def test_airflow_image_is_the_locked_airflow_with_the_dags() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    base = resolved("airflow").base.partition("@")[0]
    assert base == f"apache/airflow:{locked['apache-airflow']}-python3.11"
    assert locked["apache-airflow-providers-cncf-kubernetes"] == "10.25.0"
    assert (["dags/"], "/opt/airflow/dags/") in copies(reachable("airflow"))
    assert environment_values("kind")["airflow"]["airflowVersion"] == locked["apache-airflow"]


# --- build contexts ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(path: str, ignore_file: Path) -> bool:
    """Whether the build context leaves ``path`` out, with Docker's rules: the last matching
    line wins, `!` re-includes, and a pattern matching a folder matches what is inside."""
    excluded = False
    parts = path.split("/")
    for line in ignore_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _pattern_regex(line.removeprefix("!").strip("/"))
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def context_files(source: str) -> list[str]:
    path = ROOT / source
    if path.is_file():
        return [source]
    return sorted(
        str(p.relative_to(ROOT))
        for p in path.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def test_build_context_sends_what_the_images_copy_and_nothing_else() -> None:
    """One ignore file, the root's (every target builds from the root with it)."""
    ignore_file = ROOT / ".dockerignore"
    assert not DOCKERFILE.with_name("Dockerfile.dockerignore").exists()
    sources = [s.rstrip("/") for srcs, _ in copies(parse(DOCKERFILE)) for s in srcs]
    for source in sources:
        files = context_files(source)
        sent = [f for f in files if not ignored(f, ignore_file)]
        assert sent, f"{ignore_file.name} leaves out everything of {source}"
        if (ROOT / source).is_file():
            assert sent == files, f"{ignore_file.name} leaves out {source}"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for path in tracked:
        needed = any(path == s or path.startswith(f"{s}/") for s in sources)
        if not needed:
            assert ignored(path, ignore_file), path
    # generated files never travel
    for junk in (
        "src/beatlytica/__pycache__/cli.cpython-311.pyc",
        "dbt/target/manifest.json",
        "dbt/logs/dbt.log",
        ".venv/bin/python",
    ):
        assert ignored(junk, ignore_file), junk
