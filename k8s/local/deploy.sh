#!/usr/bin/env bash
# charts/beatlytica on the local cluster, as close to kind as this machine allows:
#   1. the namespaces (k8s/kind/namespaces.yaml) and the pinned upstream CRDs (Strimzi, the
#      Spark operator) from ../shared/upstream (BEATLYTICA_SHARED_DIR), read, never copied;
#   2. the ServiceAccounts the official Airflow chart would create (airflow-scheduler,
#      airflow-triggerer), which the chart's RBAC binds;
#   3. `helm upgrade --install` with kind's values plus k8s/local/values.yaml;
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

# kind's values: the `beatlytica:` sections of the umbrella's values files
values=$STATE/values
mkdir -p "$values"
"$PYTHON" - "$ROOT" "$values" <<'PY'
import sys
from pathlib import Path

import yaml

root, out = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("values", "values-kind"):
    data = yaml.safe_load((root / "charts/platform" / f"{name}.yaml").read_text()) or {}
    (out / f"platform-{name}.yaml").write_text(yaml.safe_dump(data.get("beatlytica") or {}))
PY
"$HELM" upgrade --install "$RELEASE" "$ROOT/charts/beatlytica" -n "$NAMESPACE" \
  -f "$values/platform-values.yaml" -f "$values/platform-values-kind.yaml" -f "$LOCAL_DIR/values.yaml" \
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
