#!/usr/bin/env bash
# The GCP side of Beatlytica on GKE, for one project. Idempotent: every step checks first.
#
#   GCP_PROJECT=my-project REGION=europe-west1 k8s/gke/setup.sh
#
# Creates: the Artifact Registry repository `beatlytica`, the GKE cluster (Workload Identity,
# Dataplane V2 so NetworkPolicies are enforced), the bucket <project>-beatlytica (the lake, the
# Spark checkpoints, the Airflow task logs), the BigQuery datasets `raw` (the loader's tables) and
# `beatlytica` (dbt's models), four Google service accounts with the least roles they need, and
# the Workload Identity bindings that let the Kubernetes ServiceAccounts act as them. No service
# account keys are ever created. Needs gcloud, bq (Cloud SDK) and kubectl.
set -euo pipefail

: "${GCP_PROJECT:?set GCP_PROJECT to your project id}"
REGION=${REGION:-europe-west1}
CLUSTER=${CLUSTER:-beatlytica}
BQ_LOCATION=${BQ_LOCATION:-EU}
BUCKET=${BUCKET:-${GCP_PROJECT}-beatlytica}
# the namespaces of k8s/kind/namespaces.yaml
NAMESPACE=beatlytica
JOBS_NAMESPACE=beatlytica-jobs
HERE=$(cd "$(dirname "$0")" && pwd)

log() { printf '\n== %s\n' "$*"; }
gsa() { printf '%s@%s.iam.gserviceaccount.com' "$1" "$GCP_PROJECT"; }

log "APIs"
gcloud services enable --project "$GCP_PROJECT" container.googleapis.com \
  artifactregistry.googleapis.com storage.googleapis.com bigquery.googleapis.com \
  iamcredentials.googleapis.com

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
    --workload-pool "$GCP_PROJECT.svc.id.goog" --enable-dataplane-v2
gcloud container clusters get-credentials "$CLUSTER" --project "$GCP_PROJECT" --region "$REGION"
kubectl apply -f "$HERE/../kind/namespaces.yaml"

log "the nodes pull the images"
NODE_SA=$(gcloud container clusters describe "$CLUSTER" --project "$GCP_PROJECT" \
  --region "$REGION" --format 'value(nodeConfig.serviceAccount)')
if [[ -z "$NODE_SA" || "$NODE_SA" == default ]]; then
  NODE_SA="$(gcloud projects describe "$GCP_PROJECT" --format 'value(projectNumber)')-compute@developer.gserviceaccount.com"
fi
gcloud artifacts repositories add-iam-policy-binding beatlytica --project "$GCP_PROJECT" \
  --location "$REGION" --member "serviceAccount:$NODE_SA" --role roles/artifactregistry.reader \
  >/dev/null

log "bucket gs://$BUCKET"
gcloud storage buckets describe "gs://$BUCKET" >/dev/null 2>&1 \
  || gcloud storage buckets create "gs://$BUCKET" --project "$GCP_PROJECT" --location "$REGION" \
    --uniform-bucket-level-access

log "BigQuery datasets raw and beatlytica ($BQ_LOCATION)"
for dataset in raw beatlytica; do
  bq --project_id "$GCP_PROJECT" show --dataset "$GCP_PROJECT:$dataset" >/dev/null 2>&1 \
    || bq --project_id "$GCP_PROJECT" --location "$BQ_LOCATION" mk --dataset "$GCP_PROJECT:$dataset"
done

log "Google service accounts"
for name in beatlytica-stream beatlytica-jobs beatlytica-airflow beatlytica-dashboard; do
  gcloud iam service-accounts describe "$(gsa "$name")" --project "$GCP_PROJECT" >/dev/null 2>&1 \
    || gcloud iam service-accounts create "$name" --project "$GCP_PROJECT" \
      --display-name "Beatlytica $name"
done

log "roles"
bucket_role() {
  gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" \
    --member "serviceAccount:$(gsa "$1")" --role "$2" >/dev/null
}
dataset_role() {
  bq --project_id "$GCP_PROJECT" add-iam-policy-binding \
    --member "serviceAccount:$(gsa "$1")" --role "$3" "$GCP_PROJECT:$2" >/dev/null
}
# the streaming job writes the lake and its checkpoints
bucket_role beatlytica-stream roles/storage.objectAdmin
bucket_role beatlytica-stream roles/storage.legacyBucketReader
# the loader reads the lake (BigQuery load jobs read it as the caller) and notes what it loaded
# (<lake>/_loads); dbt publishes its docs site to <lake>/docs/dbt
bucket_role beatlytica-jobs roles/storage.objectUser
dataset_role beatlytica-jobs raw roles/bigquery.dataEditor
dataset_role beatlytica-jobs beatlytica roles/bigquery.dataEditor
gcloud projects add-iam-policy-binding "$GCP_PROJECT" --condition None \
  --member "serviceAccount:$(gsa beatlytica-jobs)" --role roles/bigquery.jobUser >/dev/null
# Airflow writes and reads the task logs (gs://$BUCKET/airflow-logs)
bucket_role beatlytica-airflow roles/storage.objectAdmin
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
