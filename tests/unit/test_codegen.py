"""The files derived from the event model (beatlytica.codegen) are current, and a topic added to
the model reaches the chart and the dbt project through them and nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from beatlytica import codegen
from beatlytica.events import TOPIC_NAMES
from tests.helpers import ROOT
from tests.unit.test_dbt_project import dbt_env, run_dbt
from tests.unit.test_helm_charts import HELM, KUBE_VERSION

FAKE = "fake_events"


def test_the_generated_files_are_current() -> None:
    assert codegen.stale(ROOT) == [], "run `beatlytica codegen`"


def test_check_names_a_stale_file(tmp_path: Path) -> None:
    codegen.write(tmp_path)
    assert codegen.stale(tmp_path) == []
    (tmp_path / "dbt/macros/lake_topics.sql").write_text("{% macro lake_topics() %}{% endmacro %}")
    result = subprocess.run(
        [str(ROOT / ".venv/bin/beatlytica"), "codegen", "--check", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "stale generated files: dbt/macros/lake_topics.sql" in result.stderr


@pytest.fixture(scope="module")
def with_a_new_topic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart and the dbt project after the steps of docs/development.md for a new
    topic: the model gains it (here: patched), `beatlytica codegen`, a source entry and a
    staging model. Nothing else is edited."""
    root = tmp_path_factory.mktemp("new-topic")
    shutil.copytree(ROOT / "charts/beatlytica", root / "charts/beatlytica")
    shutil.copytree(
        ROOT / "dbt", root / "dbt", ignore=shutil.ignore_patterns("target", "logs", ".user.yml")
    )
    patch = pytest.MonkeyPatch()
    patch.setattr(codegen, "TOPIC_NAMES", (*TOPIC_NAMES, FAKE))
    try:
        assert set(codegen.write(root)) == set(codegen.FILES)
    finally:
        patch.undo()
    sources_file = root / "dbt/models/staging/__sources.yml"
    sources = yaml.safe_load(sources_file.read_text())
    sources["sources"][0]["tables"].append({"name": FAKE, "description": "A new topic."})
    sources_file.write_text(yaml.safe_dump(sources, sort_keys=False))
    # its staging model has the columns of the others (here: borrowed from one of them)
    (root / f"dbt/models/staging/stg_{FAKE}.sql").write_text(
        "select * from {{ ref('stg_auth_events') }}\n"
    )
    return root


def test_a_new_topic_gets_its_kafka_topic_acls_and_setting(with_a_new_topic: Path) -> None:
    chart = with_a_new_topic / "charts/beatlytica"
    command = [str(HELM), "template", "b", str(chart), "--kube-version", KUBE_VERSION]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    topics = [d["spec"]["topicName"] for d in docs if d["kind"] == "KafkaTopic"]
    assert topics == [*TOPIC_NAMES, FAKE]
    for user in (d for d in docs if d["kind"] == "KafkaUser"):
        acls = user["spec"]["authorization"]["acls"]
        assert FAKE in {acl["resource"]["name"] for acl in acls}
    configmaps = [d["data"] for d in docs if d["kind"] == "ConfigMap"]
    settings = [data for data in configmaps if "BEATLYTICA_TOPICS" in data]
    assert settings and all(
        data["BEATLYTICA_TOPICS"].split(",") == [*TOPIC_NAMES, FAKE] for data in settings
    )


def test_a_new_topic_joins_the_union_and_the_quality_mart(
    with_a_new_topic: Path, tmp_path: Path
) -> None:
    project = with_a_new_topic / "dbt"
    env = dbt_env(BEATLYTICA_DUCKDB_PATH=str(tmp_path / "w.duckdb"))
    models = "int_events_unioned mart_data_quality_daily"
    run_dbt("compile", "--select", models, work=tmp_path, env=env, project=project)
    manifest = json.loads((tmp_path / "target/manifest.json").read_text())
    for model in ("int_events_unioned", "mart_data_quality_daily"):
        node = manifest["nodes"][f"model.beatlytica.{model}"]
        assert f"model.beatlytica.stg_{FAKE}" in node["depends_on"]["nodes"]
        assert f"'{FAKE}' as topic" in node["compiled_code"]
