#!/usr/bin/env bash
# Build the local cluster's binaries from the Go module proxy, once per version, into the cache
# (lib.sh: $CACHE, outside the work tree): Kubernetes (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy, kubectl), etcd, CoreDNS, the local-path provisioner and
# the pause binary of the pod sandboxes. A second run with everything built does nothing.
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "Go is not installed (needed to build Kubernetes from the Go module proxy)"
command -v gcc >/dev/null || die "gcc is not installed (needed to build the pause binary)"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
WORK=$CACHE/build
mkdir -p "$WORK"

# build <output path> <what>: runs the rest of the arguments in a temporary folder, then moves
# the result in place, so an interrupted build never leaves a half-written binary behind
timed() { local what=$1 start=$SECONDS; shift; "$@" || die "building $what failed (see the output above)"
  say "built $what in $((SECONDS - start)) s"; }

# --- Kubernetes: a wrapper module requires k8s.io/kubernetes and replaces every ./staging module
# by its published twin (k8s.io/api v0.37.0 for v1.37.0, ...), as the main module cannot
k8s() {
  local v=v$KUBERNETES_VERSION minor=${KUBERNETES_VERSION#*.}; minor=${minor%%.*}
  local staging=v0.${KUBERNETES_VERSION#*.} mod=$WORK/kubernetes-$v out=$K8S_BIN.tmp
  mkdir -p "$mod" && cd "$mod"
  [ -f go.mod ] || go mod init beatlytica.local/kubernetes >/dev/null 2>&1
  go mod edit -require="k8s.io/kubernetes@$v"
  go mod download "k8s.io/kubernetes@$v"
  local gomod; gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$v.mod"
  for m in $(grep -oE '^\s+k8s.io/[a-z0-9-]+ => ./staging' "$gomod" | awk '{print $1}'); do
    go mod edit -replace="$m=$m@$staging"
  done
  local cmds="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
  # shellcheck disable=SC2046
  go get $(for c in $cmds; do echo "k8s.io/kubernetes/cmd/$c@$v"; done)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  rm -rf "$out" && mkdir -p "$out"
  for c in $cmds; do go build -trimpath -ldflags "$ld" -o "$out/$c" "k8s.io/kubernetes/cmd/$c"; done
  rm -rf "$K8S_BIN" && mv "$out" "$K8S_BIN"
}

# --- etcd: a five-line main around etcdmain (the etcd module's own main is not go-installable)
etcd() {
  local mod=$WORK/etcd-v$ETCD_VERSION
  mkdir -p "$mod" && cd "$mod"
  [ -f go.mod ] || go mod init beatlytica.local/etcd >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" && go mod tidy
  mkdir -p "$(dirname "$ETCD_BIN")"
  go build -trimpath -ldflags "-s -w" -o "$ETCD_BIN.tmp" . && mv "$ETCD_BIN.tmp" "$ETCD_BIN"
}

gobin() { # <binary path> <module@version>
  local dir; dir=$(dirname "$1"); mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" go install -trimpath -ldflags "-s -w" "$2"
  mkdir -p "$dir" && mv "$dir.tmp/$(basename "$1")" "$1" && rm -rf "$dir.tmp"
}

# --- the pause binary of every pod sandbox, from pause.c in the Kubernetes module
pause() {
  go mod download "k8s.io/kubernetes@v$KUBERNETES_VERSION"
  local src; src="$(go env GOMODCACHE)/k8s.io/kubernetes@v$KUBERNETES_VERSION/build/pause/linux/pause.c"
  mkdir -p "$(dirname "$PAUSE_BIN")"
  gcc -Os -static -DVERSION="$PAUSE_VERSION-beatlytica" -o "$PAUSE_BIN.tmp" "$src"
  strip "$PAUSE_BIN.tmp" && mv "$PAUSE_BIN.tmp" "$PAUSE_BIN"
}

[ -x "$K8S_BIN/kubelet" ] || timed "Kubernetes v$KUBERNETES_VERSION" k8s
[ -x "$ETCD_BIN" ] || timed "etcd v$ETCD_VERSION" etcd
[ -x "$COREDNS_BIN" ] || timed "CoreDNS v$COREDNS_VERSION" gobin "$COREDNS_BIN" "github.com/coredns/coredns@v$COREDNS_VERSION"
[ -x "$LOCAL_PATH_BIN" ] || timed "local-path-provisioner v$LOCAL_PATH_PROVISIONER_VERSION" \
  gobin "$LOCAL_PATH_BIN" "github.com/rancher/local-path-provisioner@v$LOCAL_PATH_PROVISIONER_VERSION"
[ -x "$PAUSE_BIN" ] || timed "pause $PAUSE_VERSION" pause
say "binaries in $CACHE"
