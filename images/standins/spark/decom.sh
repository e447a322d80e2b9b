#!/bin/bash
# Test-only (images/standins/README.md): executor decommissioning for the Spark stand-in. The
# preStop hook Spark sets runs this: signal the executor JVM with SIGPWR, wait for it to exit.
pid=$(pgrep -f KubernetesExecutorBackend | head -n 1)
[ -n "$pid" ] || exit 0
kill -s PWR "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
