#!/usr/bin/env bash
# The GCP side of Beatlytica on GKE, for one project. Idempotent: every step checks first.
#
#   GCP_PROJECT=my-project AUTHORIZED_NETWORKS=203.0.113.7/32 REGION=europe-west1 k8s/gke/setup.sh
#
# Creates: the Artifact Registry repository `beatlytica`, the GKE cluster (Workload Identity,
# Dataplane V2 so NetworkPolicies are enforced; private nodes with no internet route, running as
# their own service account, not the Compute default one; the control plane reachable from
# AUTHORIZED_NETWORKS only), Private Google Access (Google APIs and Artifact Registry resolve to
# private.googleapis.com, the only outside addresses the chart's NetworkPolicies allow), the
# bucket <project>-beatlytica (the lake, the Spark checkpoints, the Airflow task logs), the
# BigQuery datasets `raw` (the loader's tables) and `beatlytica` (dbt's models), the Google
# service accounts with the least roles they need, and the Workload Identity bindings that let
# the Kubernetes ServiceAccounts act as them. No service account keys are ever created. Needs
# gcloud, bq (Cloud SDK) and kubectl.
set -euo pipefail

: "${GCP_PROJECT:?set GCP_PROJECT to your project id}"
: "${AUTHORIZED_NETWORKS:?set AUTHORIZED_NETWORKS to the CIDRs that may reach the control plane of the cluster, comma-separated, e.g. your address/32}"
REGION=${REGION:-europe-west1}
NETWORK=${NETWORK:-default}
# the control plane's private range (charts/platform/values-gke.yaml's apiServerCidr)
MASTER_CIDR=172.16.0.32/28
# private.googleapis.com (the chart's networkPolicies.googleApisCidrs, 199.36.153.8/30)
PRIVATE_GOOGLE_ACCESS=199.36.153.8,199.36.153.9,199.36.153.10,199.36.153.11
CLUSTER=${CLUSTER:-beatlytica}
BQ_LOCATION=${BQ_LOCATION:-EU}
BUCKET=${BUCKET:-${GCP_PROJECT}-beatlytica}
# the lake's folder in the bucket (the chart's lake.prefix)
LAKE_PREFIX=lake
# the namespaces of k8s/kind/namespaces.yaml
NAMESPACE=beatlytica
JOBS_NAMESPACE=beatlytica-jobs
HERE=$(cd "$(dirname "$0")" && pwd)

log() { printf '\n== %s\n' "$*"; }
gsa() { printf '%s@%s.iam.gserviceaccount.com' "$1" "$GCP_PROJECT"; }

log "APIs"
gcloud services enable --project "$GCP_PROJECT" container.googleapis.com \
  artifactregistry.googleapis.com storage.googleapis.com bigquery.googleapis.com \
  iamcredentials.googleapis.com compute.googleapis.com dns.googleapis.com

log "Google service accounts"
for name in beatlytica-nodes beatlytica-stream beatlytica-jobs beatlytica-airflow beatlytica-dashboard; do
  gcloud iam service-accounts describe "$(gsa "$name")" --project "$GCP_PROJECT" >/dev/null 2>&1 \
    || gcloud iam service-accounts create "$name" --project "$GCP_PROJECT" \
      --display-name "Beatlytica $name"
done
# the nodes: logs, metrics and what the kubelet needs, nothing of the project's data
gcloud projects add-iam-policy-binding "$GCP_PROJECT" --condition None \
  --member "serviceAccount:$(gsa beatlytica-nodes)" --role roles/container.defaultNodeServiceAccount \
  >/dev/null

log "Private Google Access: Google APIs and Artifact Registry at private.googleapis.com"
gcloud compute networks subnets update "$NETWORK" --project "$GCP_PROJECT" --region "$REGION" \
  --enable-private-ip-google-access
private_zone() { # <zone> <domain> <name of the A record>: the A record at the VIPs, * a CNAME to it
  gcloud dns managed-zones describe "$1" --project "$GCP_PROJECT" >/dev/null 2>&1 \
    || gcloud dns managed-zones create "$1" --project "$GCP_PROJECT" --visibility private \
      --networks "$NETWORK" --dns-name "$2." --description "Private Google Access: $2"
  gcloud dns record-sets describe "$3." --zone "$1" --type A --project "$GCP_PROJECT" >/dev/null 2>&1 \
    || gcloud dns record-sets create "$3." --zone "$1" --type A --ttl 300 \
      --rrdatas "$PRIVATE_GOOGLE_ACCESS" --project "$GCP_PROJECT"
  gcloud dns record-sets describe "*.$2." --zone "$1" --type CNAME --project "$GCP_PROJECT" \
    >/dev/null 2>&1 \
    || gcloud dns record-sets create "*.$2." --zone "$1" --type CNAME --ttl 300 \
      --rrdatas "$3." --project "$GCP_PROJECT"
}
private_zone beatlytica-googleapis googleapis.com private.googleapis.com
private_zone beatlytica-pkg-dev pkg.dev pkg.dev

log "Artifact Registry: $REGION-docker.pkg.dev/$GCP_PROJECT/beatlytica"
gcloud artifacts repositories describe beatlytica --project "$GCP_PROJECT" --location "$REGION" \
  >/dev/null 2>&1 \
  || gcloud artifacts repositories create beatlytica --project "$GCP_PROJECT" \
    --location "$REGION" --repository-format docker

log "GKE cluster $CLUSTER"
gcloud container clusters describe "$CLUSTER" --project "$GCP_PROJECT" --region "$REGION" \
  >/dev/null 2>&1 \
  || gcloud container clusters create "$CLUSTER" --project "$GCP_PROJECT" --region "$REGION" \
    --release-channel regular --num-nodes 1 --machine-type e2-standard-4 \
    --workload-pool "$GCP_PROJECT.svc.id.goog" --enable-dataplane-v2 \
    --service-account "$(gsa beatlytica-nodes)" --network "$NETWORK" --enable-ip-alias \
    --enable-private-nodes --master-ipv4-cidr "$MASTER_CIDR" \
    --enable-master-authorized-networks --master-authorized-networks "$AUTHORIZED_NETWORKS"
# an existing cluster keeps its networks in step with AUTHORIZED_NETWORKS
gcloud container clusters update "$CLUSTER" --project "$GCP_PROJECT" --region "$REGION" \
  --enable-master-authorized-networks --master-authorized-networks "$AUTHORIZED_NETWORKS"
gcloud container clusters get-credentials "$CLUSTER" --project "$GCP_PROJECT" --region "$REGION"
kubectl apply -f "$HERE/../kind/namespaces.yaml"

log "the nodes pull the images"
gcloud artifacts repositories add-iam-policy-binding beatlytica --project "$GCP_PROJECT" \
  --location "$REGION" --member "serviceAccount:$(gsa beatlytica-nodes)" \
  --role roles/artifactregistry.reader >/dev/null

log "bucket gs://$BUCKET"
gcloud storage buckets describe "gs://$BUCKET" >/dev/null 2>&1 \
  || gcloud storage buckets create "gs://$BUCKET" --project "$GCP_PROJECT" --location "$REGION" \
    --uniform-bucket-level-access

log "BigQuery datasets raw and beatlytica ($BQ_LOCATION)"
for dataset in raw beatlytica; do
  bq --project_id "$GCP_PROJECT" show --dataset "$GCP_PROJECT:$dataset" >/dev/null 2>&1 \
    || bq --project_id "$GCP_PROJECT" --location "$BQ_LOCATION" mk --dataset "$GCP_PROJECT:$dataset"
done

log "roles"
bucket_role() { # <account> <role> [<object prefix>...]: the role on those objects only
  local condition=None prefix expression=""
  for prefix in "${@:3}"; do
    expression+="${expression:+ || }resource.name.startsWith(\"projects/_/buckets/$BUCKET/objects/$prefix\")"
  done
  [ -z "$expression" ] || condition="expression=$expression,title=$1 writes ${*:3}"
  gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" \
    --member "serviceAccount:$(gsa "$1")" --role "$2" --condition "$condition" >/dev/null
}
dataset_role() {
  bq --project_id "$GCP_PROJECT" add-iam-policy-binding \
    --member "serviceAccount:$(gsa "$1")" --role "$3" "$GCP_PROJECT:$2" >/dev/null
}
# the streaming job writes the lake and its checkpoints, under the lake's folder
bucket_role beatlytica-stream roles/storage.legacyBucketReader
bucket_role beatlytica-stream roles/storage.objectViewer
bucket_role beatlytica-stream roles/storage.objectAdmin "$LAKE_PREFIX/"
# the loader reads the lake (BigQuery load jobs read it as the caller) and notes what it loaded
# (<lake>/_loads); dbt publishes its docs site to <lake>/docs/dbt. It may change nothing else:
# not the lake's files, its commit logs or the stream's checkpoints (the chart's lake.prefix)
bucket_role beatlytica-jobs roles/storage.objectViewer
bucket_role beatlytica-jobs roles/storage.objectUser "$LAKE_PREFIX/_loads/" "$LAKE_PREFIX/docs/"
dataset_role beatlytica-jobs raw roles/bigquery.dataEditor
dataset_role beatlytica-jobs beatlytica roles/bigquery.dataEditor
gcloud projects add-iam-policy-binding "$GCP_PROJECT" --condition None \
  --member "serviceAccount:$(gsa beatlytica-jobs)" --role roles/bigquery.jobUser >/dev/null
# Airflow reads the lake (its sensor) and writes and reads the task logs, nothing else
bucket_role beatlytica-airflow roles/storage.objectViewer
bucket_role beatlytica-airflow roles/storage.objectAdmin airflow-logs/
# the dashboard reads dbt's marts (tables in `beatlytica`) and runs its queries as query jobs
dataset_role beatlytica-dashboard beatlytica roles/bigquery.dataViewer
gcloud projects add-iam-policy-binding "$GCP_PROJECT" --condition None \
  --member "serviceAccount:$(gsa beatlytica-dashboard)" --role roles/bigquery.jobUser >/dev/null

log "Workload Identity: Kubernetes ServiceAccount -> Google service account"
bind_workload_identity() {
  gcloud iam service-accounts add-iam-policy-binding "$(gsa "$3")" --project "$GCP_PROJECT" \
    --role roles/iam.workloadIdentityUser \
    --member "serviceAccount:$GCP_PROJECT.svc.id.goog[$1/$2]" >/dev/null
}
bind_workload_identity "$NAMESPACE" beatlytica-spark beatlytica-stream
bind_workload_identity "$JOBS_NAMESPACE" beatlytica-jobs beatlytica-jobs
bind_workload_identity "$JOBS_NAMESPACE" beatlytica-dashboard beatlytica-dashboard
bind_workload_identity "$NAMESPACE" airflow-scheduler beatlytica-airflow
bind_workload_identity "$NAMESPACE" airflow-triggerer beatlytica-airflow
bind_workload_identity "$NAMESPACE" airflow-api-server beatlytica-airflow

log "done: make deploy PROFILE=gke GCP_PROJECT=$GCP_PROJECT SKAFFOLD_DEFAULT_REPO=$REGION-docker.pkg.dev/$GCP_PROJECT"
