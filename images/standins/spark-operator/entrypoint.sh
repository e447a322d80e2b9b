#!/bin/bash
# Test-only entrypoint of the Spark operator stand-in (images/standins/README.md): the
# operator's command line under tini.
set -euo pipefail
exec /usr/bin/tini -s -- /usr/bin/spark-operator "$@"
