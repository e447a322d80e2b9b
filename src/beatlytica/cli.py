"""The ``beatlytica`` command: one thin entrypoint per image and the embedded stack's tools."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from beatlytica.errors import NOTHING_LATE, BeatlyticaError

log = logging.getLogger("beatlytica")

Handler = Callable[[argparse.Namespace], int]


# --- generate -------------------------------------------------------------------------------


def _cmd_generate(args: argparse.Namespace) -> int:
    from beatlytica.generator.runner import run
    from beatlytica.generator.simulation import Simulation, SimulationConfig
    from beatlytica.generator.sinks import FileSink, KafkaSink
    from beatlytica.settings import get_settings
    from beatlytica.timeparse import parse_utc

    settings = get_settings()
    if args.start:
        start = parse_utc(args.start)
    elif args.realtime:
        start = datetime.now(UTC).replace(microsecond=0)
    else:
        raise BeatlyticaError("--start is required unless --realtime (which starts now)")
    end = parse_utc(args.end) if args.end else None
    if end is None and not args.realtime:
        raise BeatlyticaError("--end is required unless --realtime (which runs until stopped)")
    if args.speed <= 0:
        raise BeatlyticaError(f"--speed must be positive, found {args.speed}")
    if args.health_port is not None and args.sink != "kafka":
        raise BeatlyticaError("--health-port probes the Kafka producer: it needs --sink kafka")
    tag = (args.tag if args.tag is not None else settings.generator_tag) or None
    config = SimulationConfig(
        users=args.users,
        start=start,
        end=end,
        seed=args.seed,
        instance=args.instance,
        quoted_user_agent_share=settings.generator_quoted_user_agent_share,
        mojibake_song_share=settings.generator_mojibake_song_share,
        tag=tag,
    )
    simulation = Simulation(config)
    if args.sink == "files":
        if args.out is None:
            raise BeatlyticaError("--sink files needs --out DIR")
        sink: FileSink | KafkaSink = FileSink(args.out, settings.topics)
    else:
        sink = KafkaSink(
            settings.kafka_client_config(),
            settings.topics,
            settings.kafka_connect_timeout_s,
            delivery_timeout_s=settings.kafka_delivery_timeout_s,
        )
        if args.health_port is not None:
            from beatlytica.generator.health import serve_health

            server = serve_health(sink, args.health_port)
            log.info(
                "serving /healthz and /readyz",
                extra={"fields": {"port": server.server_address[1]}},
            )
    log.info(
        "generating events",
        extra={
            "fields": {
                "sink": args.sink,
                "users": args.users,
                "start": start.isoformat(),
                "end": end.isoformat() if end else None,
                "seed": args.seed,
                "instance": args.instance,
                "realtime": args.realtime,
                "quoted_user_agent_share": config.quoted_user_agent_share,
                "mojibake_song_share": config.mojibake_song_share,
                "tag": tag,
            }
        },
    )
    result = run(simulation, sink, settings.topics, realtime=args.realtime, speed=args.speed)
    log.info(
        "generated",
        extra={
            "fields": {
                "events": result.events,
                "seconds": round(result.seconds, 2),
                "events_per_s": round(result.events / max(result.seconds, 1e-9)),
                "stopped_early": result.stopped_early,
                "undelivered": result.report.total_failed,
                **{f"delivered.{t}": n for t, n in sorted(result.report.delivered.items())},
                **{f"undelivered.{t}": n for t, n in sorted(result.report.failed.items())},
            }
        },
    )
    if result.skipped:
        log.info(
            "events of topics outside BEATLYTICA_TOPICS were not written",
            extra={"fields": {f"skipped.{t}": n for t, n in sorted(result.skipped.items())}},
        )
    if result.report.total_failed:
        raise BeatlyticaError(
            f"{result.report.total_failed} of {result.report.total_written} events were not "
            f"delivered ({dict(result.report.failed)}); first error: {result.report.first_error}"
        )
    return 0


# --- kafka ----------------------------------------------------------------------------------


def _cmd_kafka(args: argparse.Namespace) -> int:
    from beatlytica import kafka_local
    from beatlytica.settings import get_settings

    settings = get_settings()
    broker = kafka_local.from_settings()
    if args.action == "up":
        broker.start({t: settings.kafka_partitions for t in settings.topics})
        print(f"Kafka is up on {broker.bootstrap_servers} (data in {broker.data_dir})")
    elif args.action == "down":
        was_running = broker.stop()
        print("Kafka stopped" if was_running else "Kafka was not running")
    else:
        pid = broker.pid()
        print(f"Kafka running, pid {pid}" if pid else "Kafka not running")
        return 0 if pid else 1
    return 0


# --- settings -------------------------------------------------------------------------------


def _cmd_settings(args: argparse.Namespace) -> int:
    from beatlytica.settings import get_settings, settings_table, update_docs

    if args.update_docs:
        update_docs(args.update_docs)
        return 0
    if args.table:
        sys.stdout.write(settings_table())
        return 0
    for name, value in get_settings().model_dump().items():
        print(f"{name}={value}")
    return 0


def _cmd_codegen(args: argparse.Namespace) -> int:
    from beatlytica.codegen import stale, write

    if args.check:
        outdated = stale(args.root)
        if outdated:
            raise BeatlyticaError(
                f"stale generated files: {', '.join(outdated)} (run `beatlytica codegen`)"
            )
        return 0
    for path in write(args.root):
        print(f"wrote {path}")
    return 0


def _cmd_pin_images(args: argparse.Namespace) -> int:
    from beatlytica.base_images import Registry, check, pin

    registry = Registry()
    if args.check:
        problems = check(args.dockerfile, registry)
        if problems:
            raise BeatlyticaError(
                f"{args.dockerfile}: " + "; ".join(problems) + " (run `make pin-base-images`)"
            )
        print(f"{args.dockerfile}: every base image is pinned to a digest its registry serves")
        return 0
    for pinned in pin(args.dockerfile, registry):
        was = f" (was {pinned.image.digest or 'the tag alone'})" if pinned.changed else ""
        print(f"{pinned.arg}={pinned.image.pinned(pinned.digest)}{was}")
    return 0


# --- stream -------------------------------------------------------------------------------


def _cmd_stream(args: argparse.Namespace) -> int:
    from beatlytica.settings import get_settings
    from spark_jobs.stream_events import run

    return run(get_settings(), args.master)


# --- load ---------------------------------------------------------------------------------


def _cmd_load(args: argparse.Namespace) -> int:
    import json

    from beatlytica.loader import load
    from beatlytica.settings import get_settings
    from beatlytica.timeparse import parse_utc

    settings = get_settings()
    topics = tuple(args.topic) if args.topic else settings.topics
    start, end = parse_utc(args.start), parse_utc(args.end)
    if args.late:
        from beatlytica.loader import reload_late

        reloaded = reload_late(settings, topics, start, end)
        for interval, result in reloaded:
            print(
                json.dumps(
                    {
                        "topic": interval.topic,
                        "start": interval.start.isoformat(),
                        "end": interval.end.isoformat(),
                        "added_files": len(interval.added),
                        "removed_files": len(interval.removed),
                        "rows": result.rows,
                    }
                )
            )
        return 0 if reloaded else NOTHING_LATE
    results = load(settings, topics, start, end, require_data=args.require_data)
    print(json.dumps({r.topic: {"files": r.files, "rows": r.rows} for r in results}))
    return 0


# --- reconcile ----------------------------------------------------------------------------


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from beatlytica.reconcile import reconcile, render
    from beatlytica.settings import get_settings
    from beatlytica.timeparse import parse_utc

    start, end = parse_utc(args.start), parse_utc(args.end)
    figures = reconcile(get_settings(), start, end)
    print(f"reconciliation of [{start.isoformat()}, {end.isoformat()})")
    print(render(figures))
    bad = [f.topic for f in figures if not f.ok]
    if bad:
        raise BeatlyticaError(f"lake, raw tables and facts disagree for {', '.join(bad)}")
    return 0


# --- lake ---------------------------------------------------------------------------------


def _cmd_lake_repair_file(args: argparse.Namespace) -> int:
    import json

    from beatlytica.settings import get_settings
    from spark_jobs.repair import run

    report = run(get_settings(), args.file, drop=args.drop, force=args.force, master=args.master)
    print(json.dumps(report))
    return 0


# --- dbt ----------------------------------------------------------------------------------


def _cmd_dbt(args: argparse.Namespace) -> int:
    from beatlytica.dbt_runner import run_dbt
    from beatlytica.settings import get_settings
    from beatlytica.timeparse import parse_utc

    start = parse_utc(args.start) if args.start else None
    end = parse_utc(args.end) if args.end else None
    return run_dbt(get_settings(), args.dbt_args, start, end)


def _cmd_dbt_docs(args: argparse.Namespace) -> int:
    from beatlytica.dbt_runner import docs_target, publish_docs, run_dbt
    from beatlytica.settings import get_settings

    settings = get_settings()
    if args.publish:
        print(f"dbt docs published to {publish_docs(settings)}/index.html")
        return 0
    code = run_dbt(settings, ["docs", "generate"])
    if code == 0:
        print(f"dbt docs in {docs_target(settings)}/index.html")
    return code


# --- local Airflow -------------------------------------------------------------------------


def _cmd_dag_run(args: argparse.Namespace) -> int:
    from beatlytica.airflow_local import run_dag_interval
    from beatlytica.settings import get_settings
    from beatlytica.timeparse import parse_utc

    summary = run_dag_interval(
        get_settings(), args.dag_id, parse_utc(args.start), parse_utc(args.end)
    )
    print(f"{args.dag_id}: {summary['state']} {summary['tasks']}")
    print(f"log: {summary['log']}")
    return 0


# --- dashboard -----------------------------------------------------------------------------


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from beatlytica.settings import get_settings

    settings = get_settings()
    if args.serve:
        import subprocess

        app = Path(__file__).parent / "dashboard" / "app.py"
        streamlit = Path(sys.executable).parent / "streamlit"
        return subprocess.call(
            [
                str(streamlit),
                "run",
                str(app),
                "--server.port",
                str(args.port),
                "--server.headless",
                "true",
            ]
        )
    from beatlytica.dashboard import data, export

    path = args.export or settings.home_dir / "dashboard" / "index.html"
    export.export(data.load(settings), path)
    print(f"dashboard written to {path}")
    return 0


# --- demo ---------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from beatlytica.demo import DemoConfig, run_demo
    from beatlytica.timeparse import parse_utc

    run_demo(
        DemoConfig(users=args.users, days=args.days, start=parse_utc(args.start), seed=args.seed)
    )
    return 0


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beatlytica", description=__doc__)
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="overrides BEATLYTICA_LOG_LEVEL (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="simulate Eventsim events into files or Kafka")
    gen.add_argument("--sink", choices=("files", "kafka"), default="kafka")
    gen.add_argument("--out", type=Path, help="folder of <topic>.jsonl files (--sink files)")
    gen.add_argument("--users", type=int, default=1000, help="simulated users (default 1000)")
    gen.add_argument("--start", help="simulated start, ISO-8601 UTC (default with --realtime: now)")
    gen.add_argument("--end", help="simulated end, exclusive (omit with --realtime: run for ever)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument(
        "--instance",
        type=int,
        default=0,
        help="producer replica number: its own random stream and id block (default 0)",
    )
    gen.add_argument("--realtime", action="store_true", help="pace events by the wall clock")
    gen.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="with --realtime: simulated seconds per real second (default 1)",
    )
    gen.add_argument(
        "--tag",
        help="Eventsim's --tag: a tag field with this text on every event with user details "
        "(default BEATLYTICA_GENERATOR_TAG; empty: none)",
    )
    gen.add_argument(
        "--health-port",
        type=int,
        help="with --sink kafka: serve /healthz and /readyz on this port (0: any free port)",
    )
    gen.set_defaults(handler=_cmd_generate)

    kafka = sub.add_parser("kafka", help="the local Kafka broker of the embedded stack")
    kafka.add_argument("action", choices=("up", "down", "status"))
    kafka.set_defaults(handler=_cmd_kafka)

    stream = sub.add_parser("stream", help="the Spark streaming job, Kafka -> Parquet lake")
    stream.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    stream.set_defaults(handler=_cmd_stream)

    load = sub.add_parser("load", help="load committed lake files of [start, end) into raw tables")
    load.add_argument("--start", required=True, help="interval start, ISO-8601 UTC (inclusive)")
    load.add_argument("--end", required=True, help="interval end, ISO-8601 UTC (exclusive)")
    load.add_argument("--topic", action="append", help="a topic (repeatable; default: all)")
    load.add_argument(
        "--require-data",
        action="store_true",
        help="fail when a topic has no committed lake data in the interval",
    )
    load.add_argument(
        "--late",
        action="store_true",
        help="reload only the DAG intervals in [start, end) whose committed lake files changed "
        f"since they were loaded (late events); exits {NOTHING_LATE} when there were none",
    )
    load.set_defaults(handler=_cmd_load)

    rec = sub.add_parser("reconcile", help="lake = raw tables = facts for [start, end)")
    rec.add_argument("--start", required=True, help="interval start, ISO-8601 UTC")
    rec.add_argument("--end", required=True, help="interval end, exclusive")
    rec.set_defaults(handler=_cmd_reconcile)

    lake = sub.add_parser("lake", help="repair tools of the Parquet lake (docs/lake.md)")
    lake_sub = lake.add_subparsers(dest="lake_command", required=True)
    repair = lake_sub.add_parser(
        "repair-file",
        help="rebuild an unreadable committed lake file from Kafka, or drop it",
        description="Rebuild an unreadable committed lake file from the Kafka records of its "
        "batch (the damaged file is moved to <table>/_corrupt/), or with --drop move it aside "
        "and out of the commit log when Kafka no longer holds them. docs/lake.md says more.",
    )
    repair.add_argument("file", help="the file: a path or a URI (file://…, gs://…)")
    repair.add_argument(
        "--drop",
        action="store_true",
        help="move the file aside and out of the commit log instead: its rows are lost",
    )
    repair.add_argument(
        "--force",
        action="store_true",
        help="rebuild a file that reads fine; keep a rebuilt row count other than the damaged "
        "footer's; drop a file whose records Kafka still holds",
    )
    repair.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    repair.set_defaults(handler=_cmd_lake_repair_file)

    dbt = sub.add_parser(
        "dbt",
        help="dbt with the project, profile and target from the settings",
        description="Arguments after the options go to dbt unchanged, e.g. "
        "`beatlytica dbt --start … --end … build --select fact_streams`.",
    )
    dbt.add_argument("--start", help="interval start (dbt var data_interval_start)")
    dbt.add_argument("--end", help="interval end, exclusive (dbt var data_interval_end)")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, help="the dbt command and its options")
    dbt.set_defaults(handler=_cmd_dbt)

    docs = sub.add_parser("dbt-docs", help="generate the dbt docs site (and publish it)")
    docs.add_argument("--publish", action="store_true", help="copy it to <lake>/docs/dbt/")
    docs.set_defaults(handler=_cmd_dbt_docs)

    dag_run = sub.add_parser("dag-run", help="run a DAG locally (dag.test) for one interval")
    dag_run.add_argument("dag_id", choices=("beatlytica_hourly", "beatlytica_daily"))
    dag_run.add_argument("--start", required=True, help="data interval start, ISO-8601 UTC")
    dag_run.add_argument("--end", required=True, help="data interval end, exclusive")
    dag_run.set_defaults(handler=_cmd_dag_run)

    board = sub.add_parser("dashboard", help="the dashboard: a static export or a Streamlit app")
    board.add_argument(
        "--export", type=Path, help="HTML file (default <home>/dashboard/index.html)"
    )
    board.add_argument("--serve", action="store_true", help="run the Streamlit app")
    board.add_argument("--port", type=int, default=8501)
    board.set_defaults(handler=_cmd_dashboard)

    demo = sub.add_parser("demo", help="run the embedded pipeline end to end on this machine")
    demo.add_argument("--users", type=int, default=3000, help="simulated users (default 3000)")
    demo.add_argument("--days", type=float, default=2.0, help="simulated days (default 2)")
    demo.add_argument("--start", default="2026-11-01T00:00:00", help="simulated start (UTC)")
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(handler=_cmd_demo)

    settings = sub.add_parser("settings", help="show the effective settings")
    settings.add_argument("--table", action="store_true", help="Markdown table of all settings")
    settings.add_argument(
        "--update-docs",
        type=Path,
        metavar="FILE",
        help="rewrite the table between the settings-table markers of FILE",
    )
    settings.set_defaults(handler=_cmd_settings)

    codegen = sub.add_parser(
        "codegen", help="rewrite the files derived from the event model (chart, dbt)"
    )
    codegen.add_argument(
        "--root", type=Path, default=Path("."), help="repository root (default: here)"
    )
    codegen.add_argument("--check", action="store_true", help="fail if any is stale")
    codegen.set_defaults(handler=_cmd_codegen)

    pins = sub.add_parser(
        "pin-images", help="pin images/Dockerfile's base images to their registries' digests"
    )
    pins.add_argument(
        "--dockerfile", type=Path, default=Path("images/Dockerfile"), help="(default: %(default)s)"
    )
    pins.add_argument(
        "--check", action="store_true", help="fail unless every one is pinned to a served digest"
    )
    pins.set_defaults(handler=_cmd_pin_images)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    from beatlytica.logs import setup_logging

    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    if args.log_level:  # child processes (Spark, dbt, pod tasks) log at the same level
        os.environ["BEATLYTICA_LOG_LEVEL"] = args.log_level
    try:
        setup_logging()
        return handler(args)
    except (BeatlyticaError, ValueError) as e:
        message = str(e)
        if isinstance(e, ValidationError):
            message = "; ".join(
                f"BEATLYTICA_{'_'.join(map(str, err['loc'])).upper()}: {err['msg']}"
                for err in e.errors()
            )
        print(f"beatlytica {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
