"""The producer pod's probes over HTTP: ``/healthz`` (liveness) and ``/readyz`` (readiness).

A stdlib server in a daemon thread answers 200 ``{"status": "ok"}`` or 503 with the reason the
probed object gives (``KafkaSink.liveness`` and ``KafkaSink.readiness``); the chart's producer
StatefulSet probes them on ``--health-port``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from beatlytica.errors import BeatlyticaError


class Probed(Protocol):
    def liveness(self) -> str | None: ...

    def readiness(self) -> str | None: ...


def serve_health(probed: Probed, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Serve the probes of ``probed`` on ``host:port`` (0: a free port) until ``shutdown()``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            checks = {"/healthz": probed.liveness, "/readyz": probed.readiness}
            check = checks.get(self.path.split("?")[0])
            if check is None:
                self._answer(404, {"status": "unknown path", "paths": sorted(checks)})
                return
            reason = check()
            if reason is None:
                self._answer(200, {"status": "ok"})
            else:
                self._answer(503, {"status": "failing", "reason": reason})

        def _answer(self, code: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode() + b"\n"
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # probes are not news
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as e:
        raise BeatlyticaError(
            f"cannot serve the health endpoints on {host}:{port}: {e.strerror}"
        ) from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
