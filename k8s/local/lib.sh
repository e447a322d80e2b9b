# Shared by the local cluster's scripts (sourced). Paths, versions and the one-line errors.
# shellcheck shell=bash
set -euo pipefail

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LOCAL_DIR/../.." && pwd)
# shellcheck source=versions.env
source "$LOCAL_DIR/versions.env"

# What is built once and kept between runs, outside the work tree, keyed by version.
CACHE=${BEATLYTICA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/beatlytica}
K8S_BIN=$CACHE/kubernetes-v$KUBERNETES_VERSION
ETCD_BIN=$CACHE/etcd-v$ETCD_VERSION/etcd
COREDNS_BIN=$CACHE/coredns-v$COREDNS_VERSION/coredns
LOCAL_PATH_BIN=$CACHE/local-path-provisioner-v$LOCAL_PATH_PROVISIONER_VERSION/local-path-provisioner
PAUSE_BIN=$CACHE/pause-$PAUSE_VERSION/pause
# The Docker engine's data (images, build cache) and containerd's image store survive
# cluster-down, like the binaries: a warm start imports nothing it already has.
DOCKER_ROOT=$CACHE/docker
CONTAINERD_ROOT=$CACHE/containerd
# What a running cluster owns: state, logs, PIDs, the admin kubeconfig. Removed by `down`.
STATE=${BEATLYTICA_CLUSTER_DIR:-$ROOT/.beatlytica/cluster}
RUN=$STATE/run
LOGS=$STATE/logs
KUBECONFIG_ADMIN=$STATE/kubeconfig
DOCKER_SOCK=$RUN/docker.sock
CONTAINERD_SOCK=$RUN/containerd.sock

# The cluster's address plan. The pod range is the CNI bridge's; nothing from it leaves the host.
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
BRIDGE=beatlytica0
API_PORT=6443
ETCD_PORT=2379
ETCD_PEER_PORT=2380
# where containerd sends image pulls: a closed loopback port, so no pull leaves the machine
DEAD_PROXY=http://127.0.0.1:9

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

die() { echo "beatlytica cluster: $*" >&2; exit 1; }
say() { echo "==> $*"; }

# the machine's own address: the API server advertises it (Endpoints refuse loopback)
node_ip() { hostname -I 2>/dev/null | awk '{print $1}'; }
node_name() { hostname | tr '[:upper:]' '[:lower:]'; }
uplink() { ip route show default 2>/dev/null | awk '{print $5; exit}'; }

# The cluster's own images, built from the binaries above (images.sh infra), never pulled.
PAUSE_IMAGE=beatlytica.local/pause:$PAUSE_VERSION
COREDNS_IMAGE=beatlytica.local/coredns:$COREDNS_VERSION
LOCAL_PATH_IMAGE=beatlytica.local/local-path-provisioner:v$LOCAL_PATH_PROVISIONER_VERSION
# the local-path provisioner's helper pods (mkdir/rm of volume folders): the Debian base
HELPER_IMAGE=beatlytica.local/debian:bookworm

# docker CLI calls go to the engine this tooling starts (its own socket, not the system's)
export DOCKER_HOST=unix://$DOCKER_SOCK
# the local stand-in for Strimzi's Kafka: a broker from the same Maven jars as the local one
KAFKA_IMAGE=beatlytica.local/kafka:local
