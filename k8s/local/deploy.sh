#!/usr/bin/env bash
# charts/beatlytica on the local cluster, as close to kind as this machine allows:
#   1. the namespaces (k8s/kind/namespaces.yaml) and the pinned upstream CRDs (Strimzi, the
#      Spark operator) from ../shared/upstream (BEATLYTICA_SHARED_DIR), read, never copied;
#   2. the ServiceAccounts the official Airflow chart would create (airflow-scheduler,
#      airflow-triggerer), which the chart's RBAC binds;
#   3. the Spark operator's own chart (from its Go module), then `helm upgrade --install` of
#      charts/beatlytica, each with kind's values plus its section of k8s/local/values.yaml;
#   4. the Kafka broker, users and topics from the chart's CRs (k8s/local/kafka/operator.py);
#   5. every workload of the release Ready (bounded wait).
# Needs: HELM, PYTHON (the project's venv), BEATLYTICA_IMAGE_TAG, KUBECONFIG.
source "$(dirname "$0")/lib.sh"
export PATH="$STATE/bin:$PATH"
: "${HELM:?set HELM}" "${PYTHON:?set PYTHON}" "${BEATLYTICA_IMAGE_TAG:?set BEATLYTICA_IMAGE_TAG}"
[ -f "$KUBECONFIG_ADMIN" ] || die "the local cluster is not up (make cluster-up)"
export KUBECONFIG=$KUBECONFIG_ADMIN
SHARED=${BEATLYTICA_SHARED_DIR:-$ROOT/../shared}
NAMESPACE=beatlytica
RELEASE=beatlytica
start=$SECONDS

crds=("$SHARED"/upstream/strimzi-*/04*-Crd-*.yaml "$SHARED"/upstream/spark-operator-*/sparkoperator.k8s.io_*.yaml)
[ -f "${crds[0]}" ] || die "no upstream CRDs in $SHARED/upstream: run 'make schemas' and set BEATLYTICA_SHARED_DIR=.cache/shared (docs/deployment.md)"
kubectl apply -f "$ROOT/k8s/kind/namespaces.yaml" >/dev/null
for crd in "${crds[@]}"; do kubectl apply --server-side --force-conflicts -f "$crd" >/dev/null; done
kubectl wait --for condition=established --timeout=60s \
  crd/kafkas.kafka.strimzi.io crd/kafkatopics.kafka.strimzi.io crd/kafkausers.kafka.strimzi.io \
  crd/kafkanodepools.kafka.strimzi.io crd/sparkapplications.sparkoperator.k8s.io >/dev/null

# the Airflow chart's ServiceAccounts of the components that start pod tasks
for sa in airflow-scheduler airflow-triggerer; do
  kubectl -n "$NAMESPACE" create serviceaccount "$sa" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done

# Each chart's values as the umbrella would hand them to it: its section of charts/platform's
# values.yaml, then of values-kind.yaml, then of k8s/local/values.yaml
values=$STATE/values
mkdir -p "$values"
"$PYTHON" - "$ROOT" "$values" <<'PY'
import sys
from pathlib import Path

import yaml

root, out = Path(sys.argv[1]), Path(sys.argv[2])
files = [root / "charts/platform/values.yaml", root / "charts/platform/values-kind.yaml",
         root / "k8s/local/values.yaml"]
for chart in ("beatlytica", "spark-operator"):
    for index, path in enumerate(files):
        section = (yaml.safe_load(path.read_text()) or {}).get(chart) or {}
        (out / f"{chart}-{index}.yaml").write_text(yaml.safe_dump(section))
# the Spark operator's chart version, as the umbrella pins it
deps = yaml.safe_load((root / "charts/platform/Chart.yaml").read_text())["dependencies"]
(out / "spark-operator.version").write_text(next(d["version"] for d in deps if d["name"] == "spark-operator"))
PY
chart_values() { local i; for i in 0 1 2; do printf -- '-f\n%s\n' "$values/$1-$i.yaml"; done; }

# The Kubeflow Spark operator (controller and webhook) from its own chart, which its Go module
# carries (the Go module proxy serves it; the chart repository is not reachable here), under the
# name the umbrella gives it
version=$(cat "$values/spark-operator.version")
module=$(cd / && go mod download -json "github.com/kubeflow/spark-operator/v2@v$version" \
  | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
[ -d "$module/charts/spark-operator-chart" ] || die "the Spark operator $version's chart is not in its Go module"
mapfile -t args < <(chart_values spark-operator)
"$HELM" upgrade --install "$RELEASE-spark-operator" "$module/charts/spark-operator-chart" -n "$NAMESPACE" \
  "${args[@]}" --wait --timeout 5m >/dev/null \
  || die "the Spark operator did not become ready: $(kubectl -n "$NAMESPACE" get pods -l app.kubernetes.io/name=spark-operator --no-headers)"
say "helm: the Spark operator $version (controller and webhook) is up"

mapfile -t args < <(chart_values beatlytica)
"$HELM" upgrade --install "$RELEASE" "$ROOT/charts/beatlytica" -n "$NAMESPACE" "${args[@]}" \
  --set-string "images.tag=$BEATLYTICA_IMAGE_TAG" >/dev/null
say "helm: release $RELEASE installed ($("$HELM" -n "$NAMESPACE" status "$RELEASE" -o json | "$PYTHON" -c 'import json,sys; print("revision", json.load(sys.stdin)["version"])'))"

"$PYTHON" "$LOCAL_DIR/kafka/operator.py" --namespace "$NAMESPACE" --image "$KAFKA_IMAGE"

for ns in "$NAMESPACE" beatlytica-jobs; do
  for workload in $(kubectl -n "$ns" get deploy,statefulset -l "app.kubernetes.io/instance=$RELEASE" -o name); do
    kubectl -n "$ns" rollout status "$workload" --timeout=300s >/dev/null \
      || die "$workload in $ns is not ready: $(kubectl -n "$ns" get pods -l "app.kubernetes.io/instance=$RELEASE" --no-headers)"
  done
done
say "charts/beatlytica is up on the local cluster in $((SECONDS - start)) s"
