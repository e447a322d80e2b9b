"""dbt killed (SIGKILL, with everything it started) in the middle of `beatlytica dbt build`,
then run again: the warehouse ends up exactly as an uninterrupted build leaves it, model for
model, row for row (real dbt, real DuckDB)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers import BEATLYTICA, ROOT, cli_env, run_cli

pytestmark = pytest.mark.integration


def models(path: Path) -> dict[str, tuple[int, int]]:
    """(rows, a digest of every row) of each table and view dbt built (schema `main`)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'main'"
            ).fetchall()
        ]
        out = {}
        for name in names:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'main' and table_name = ? order by ordinal_position",
                [name],
            ).fetchall()
            # sums of doubles depend on the order a parallel aggregate adds them in: compare
            # them to six decimals, everything else exactly
            fields = ", ".join(
                f'"{c}" := round("{c}", 6)' if kind in ("DOUBLE", "FLOAT") else f'"{c}" := "{c}"'
                for c, kind in columns
            )
            row = con.execute(
                f"select count(*), coalesce(sum(hash(struct_pack({fields}))), 0) from main.{name}"
            )
            count, digest = row.fetchone() or (0, 0)
            out[name] = (int(count), int(digest))
        return out
    finally:
        con.close()


def test_a_build_killed_midway_then_rerun_gives_the_same_warehouse(
    built_warehouse: dict[str, Any], loaded_warehouse: dict[str, Any], tmp_path: Path
) -> None:
    reference = models(built_warehouse["duckdb_path"])
    assert len(reference) > 10 and all(rows for rows, _ in reference.values())

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(loaded_warehouse["duckdb_path"], home / "warehouse.duckdb")
    env = {"BEATLYTICA_HOME": str(home)}
    log = tmp_path / "dbt.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BEATLYTICA), "dbt", "build"],
            env=cli_env(**env),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 600
    while log.read_text().count(" OK created ") < 5:
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "dbt built nothing in time"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert " Completed successfully" not in log.read_text()

    rerun = run_cli("dbt", "build", timeout=900, **env)
    assert rerun.returncode == 0, rerun.stdout[-5000:]
    assert models(home / "warehouse.duckdb") == reference
