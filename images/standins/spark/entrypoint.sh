#!/bin/bash
# Test-only entrypoint of the Spark stand-in (images/standins/README.md), written for this
# project. The contract is the one Spark on Kubernetes expects of an image: the driver pod runs
# `driver <spark-submit arguments>`, an executor pod `executor` with its settings in SPARK_*
# environment variables; anything else runs as given.
set -eo pipefail
: "${SPARK_HOME:=/opt/spark}"
JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
classpath="$SPARK_HOME/conf:$SPARK_HOME/jars/*:$PWD"
[ -z "${SPARK_EXTRA_CLASSPATH:-}" ] || classpath="$classpath:$SPARK_EXTRA_CLASSPATH"
export PYSPARK_PYTHON PYSPARK_DRIVER_PYTHON

# `init` reaps children and forwards signals when the image has tini; otherwise exec directly
run() { if command -v tini >/dev/null; then exec tini -s -- "$@"; else exec "$@"; fi; }

case "${1:-}" in
  driver)
    shift
    run "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    java_opts=()
    for name in $(compgen -v SPARK_JAVA_OPT_ | sort -V); do java_opts+=("${!name}"); done
    run "$JAVA_HOME/bin/java" "${java_opts[@]}" \
      -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" -cp "$classpath" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" \
      --podName "$SPARK_EXECUTOR_POD_NAME"
    ;;
  *)
    exec "$@"
    ;;
esac
