{{/* Names, labels and the values several templates derive. */}}

{{- define "beatlytica.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object: app.kubernetes.io/* once, here. */}}
{{- define "beatlytica.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "beatlytica.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: beatlytica
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "producer") */}}
{{- define "beatlytica.selectorLabels" -}}
app.kubernetes.io/name: {{ include "beatlytica.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's objects and pods. */}}
{{- define "beatlytica.componentLabels" -}}
{{ include "beatlytica.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The tag of our images: images.tag, else the chart's appVersion (the project's version) */}}
{{- define "beatlytica.imageTag" -}}
{{- toString (.Values.images.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* An image of ours: <registry>/beatlytica-<name>:<tag> */}}
{{- define "beatlytica.image" -}}
{{- printf "%s/beatlytica-%s:%s" .ctx.Values.images.registry .name (include "beatlytica.imageTag" .ctx) -}}
{{- end -}}

{{- define "beatlytica.kafkaBootstrap" -}}
{{- printf "%s-kafka-bootstrap.%s.svc.cluster.local:%d" .Values.kafka.clusterName .Release.Namespace (int .Values.kafka.port) -}}
{{- end -}}

{{/* The environment of a Kafka client container: its KafkaUser's name and password, and with
     kafka.tls the cluster CA it trusts. (dict "ctx" $ "role" "producer"|"stream") */}}
{{- define "beatlytica.kafkaClientEnv" -}}
{{- $user := include "beatlytica.kafkaUser" . -}}
- name: BEATLYTICA_KAFKA_USERNAME
  value: {{ $user }}
- name: BEATLYTICA_KAFKA_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $user }}
      key: password
{{- if .ctx.Values.kafka.tls }}
- name: BEATLYTICA_KAFKA_CA_CERT
  valueFrom:
    secretKeyRef:
      name: {{ .ctx.Values.kafka.clusterName }}-cluster-ca-cert
      key: ca.crt
{{- end }}
{{- end -}}

{{- define "beatlytica.kafkaUser" -}}
{{- printf "%s-%s" .ctx.Values.kafka.clusterName .role -}}
{{- end -}}

{{- define "beatlytica.gcsEmulatorName" -}}
{{- printf "%s-fake-gcs" (include "beatlytica.name" .) -}}
{{- end -}}

{{- define "beatlytica.gcsEndpoint" -}}
{{- printf "http://%s.%s.svc.cluster.local:%d" (include "beatlytica.gcsEmulatorName" .) .Release.Namespace (int .Values.gcsEmulator.port) -}}
{{- end -}}

{{- define "beatlytica.postgresName" -}}
{{- printf "%s-airflow-postgres" (include "beatlytica.name" .) -}}
{{- end -}}

{{- define "beatlytica.dashboardName" -}}
{{- printf "%s-dashboard" (include "beatlytica.name" .) -}}
{{- end -}}

{{- define "beatlytica.sparkAppName" -}}
{{- printf "%s-stream" (include "beatlytica.name" .) -}}
{{- end -}}

{{- define "beatlytica.airflowNamespace" -}}
{{- default .Release.Namespace .Values.airflow.namespace -}}
{{- end -}}

{{/* metadata.annotations of a ServiceAccount: the Workload Identity binding on GKE.
     (dict "ctx" $ "gsa" "<short name>") */}}
{{- define "beatlytica.workloadIdentity" -}}
{{- if and .ctx.Values.gcp.workloadIdentity.enabled .gsa }}
annotations:
  iam.gke.io/gcp-service-account: {{ printf "%s@%s.iam.gserviceaccount.com" .gsa (required "gcp.project is required with Workload Identity" .ctx.Values.gcp.project) }}
{{- end }}
{{- end -}}

{{/* The restricted pod security context every pod of ours runs with. */}}
{{- define "beatlytica.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "beatlytica.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Readiness and liveness probes on one HTTP path of the named port "http":
     (dict "path" "/_stcore/health") */}}
{{- define "beatlytica.httpProbes" -}}
readinessProbe:
  httpGet:
    path: {{ .path }}
    port: http
  periodSeconds: 10
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: {{ .path }}
    port: http
  periodSeconds: 30
  failureThreshold: 4
{{- end -}}

{{/* Security contexts of the pods Strimzi runs from our Kafka and KafkaNodePool CRs: what
     Strimzi's own "restricted" pod security provider sets. A template replaces Strimzi's
     default, so fsGroup 0 stays (the Kafka image runs as uid 1001 with group 0 on its volumes). */}}
{{- define "beatlytica.strimziPodSecurityContext" -}}
runAsNonRoot: true
fsGroup: 0
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "beatlytica.strimziContainerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The settings every pod reads, by variable name; settings.extra wins. */}}
{{- define "beatlytica.settings" -}}
{{- $v := .Values -}}
{{- $s := dict
  "BEATLYTICA_RUNTIME" "kubernetes"
  "BEATLYTICA_HOME" "/tmp/beatlytica"
  "BEATLYTICA_KAFKA_BOOTSTRAP_SERVERS" (include "beatlytica.kafkaBootstrap" .)
  "BEATLYTICA_KAFKA_SECURITY_PROTOCOL" (ternary "SASL_SSL" "SASL_PLAINTEXT" $v.kafka.tls)
  "BEATLYTICA_KAFKA_SASL_MECHANISM" "SCRAM-SHA-512"
  "BEATLYTICA_LAKE_URI" (printf "gs://%s/%s" $v.lake.bucket $v.lake.prefix)
  "BEATLYTICA_STREAM_TRIGGER" $v.settings.streamTrigger
  "BEATLYTICA_STREAM_STARTING_OFFSETS" $v.settings.streamStartingOffsets
  "BEATLYTICA_WAREHOUSE" $v.warehouse.backend
  "BEATLYTICA_WAREHOUSE_RAW_SCHEMA" $v.warehouse.rawSchema
  "BEATLYTICA_BIGQUERY_DATASET" $v.warehouse.bigquery.dataset
  "BEATLYTICA_BIGQUERY_LOCATION" $v.warehouse.bigquery.location
  "BEATLYTICA_DBT_PROJECT_DIR" "/opt/beatlytica/dbt"
  "BEATLYTICA_DAG_START_DATE" $v.settings.dagStartDate
  "BEATLYTICA_INTERVAL_MINUTES" (toString $v.settings.intervalMinutes)
  "BEATLYTICA_POD_TEMPLATE_DIR" $v.jobs.podTemplates.mountPath
  "BEATLYTICA_IMAGE_REGISTRY" $v.images.registry
  "BEATLYTICA_IMAGE_TAG" (include "beatlytica.imageTag" .)
-}}
{{- $_ := set $s "BEATLYTICA_TOPICS" (join "," (fromJsonArray (include "beatlytica.topicNames" .))) -}}
{{- with $v.settings.streamMaxOffsetsPerTrigger }}{{ $_ := set $s "BEATLYTICA_STREAM_MAX_OFFSETS_PER_TRIGGER" (toString .) }}{{ end -}}
{{- if $v.gcsEmulator.enabled }}{{ $_ := set $s "BEATLYTICA_GCS_ENDPOINT" (include "beatlytica.gcsEndpoint" .) }}{{ end -}}
{{- if $v.gcp.project }}{{ $_ := set $s "BEATLYTICA_GCP_PROJECT" $v.gcp.project }}{{ end -}}
{{- if eq $v.warehouse.backend "duckdb" }}
{{- /* pod tasks mount the PVC at the folder of BEATLYTICA_DUCKDB_PATH (pod-templates.yaml) */ -}}
{{- $_ := set $s "BEATLYTICA_DUCKDB_PATH" (printf "%s/warehouse.duckdb" (trimSuffix "/" $v.warehouse.duckdb.mountPath)) -}}
{{- end -}}
{{- range $key, $value := $v.settings.extra }}{{ $_ := set $s $key (toString $value) }}{{ end -}}
{{- range $key, $value := $s }}
{{ $key }}: {{ $value | quote }}
{{- end -}}
{{- end -}}

{{/* Egress to Google APIs and the GKE metadata server (Workload Identity). */}}
{{- define "beatlytica.googleEgress" -}}
# Google APIs (GCS, BigQuery, IAM credentials) over HTTPS, at the Private Google Access
# addresses only (k8s/gke/setup.sh points *.googleapis.com at them): nothing else outside
- to:
    {{- range .Values.networkPolicies.googleApisCidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - {protocol: TCP, port: 443}
# the GKE metadata server, which hands Workload Identity tokens to the pod
- to:
    - ipBlock:
        cidr: 169.254.169.254/32
  ports:
    - {protocol: TCP, port: 80}
- to:
    - ipBlock:
        cidr: 169.254.169.252/32
  ports:
    - {protocol: TCP, port: 988}
{{- end -}}

{{- /* The event topics as a JSON list, from files/topics.json (generated from the event model by
       `beatlytica codegen`): fromJsonArray (include "beatlytica.topicNames" .) */ -}}
{{- define "beatlytica.topicNames" -}}
{{- (.Files.Get "files/topics.json" | fromJson).topics | toJson -}}
{{- end -}}
