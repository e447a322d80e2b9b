#!/usr/bin/env bash
# A real one-node Kubernetes on this machine, in the spirit of Kubernetes' own
# hack/local-up-cluster.sh: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a
# kubelet on containerd (Debian's) with a bridge CNI, kube-proxy, CoreDNS and the local-path
# provisioner (the default StorageClass). Binaries come from build.sh (cached by version), the
# runtime state lives in $STATE (.beatlytica/cluster/), the admin kubeconfig in
# $STATE/kubeconfig. Every daemon runs in the background with its PID recorded in $STATE/run.
#
#   cluster.sh up       start it (idempotent: with the cluster up it changes nothing)
#   cluster.sh down     stop every process it started, by PID, and remove what it added
#   cluster.sh status   one line per process; exit 0 only when the node is Ready
#
# Egress guards, always on: image pulls go to a closed loopback port (no pull leaves the
# machine), pods and Service IPs cannot leave through the uplink (iptables chain
# BEATLYTICA-EGRESS), and CoreDNS forwards nothing.
source "$(dirname "$0")/lib.sh"

KUBECTL=$K8S_BIN/kubectl
DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)
# the ports the control plane and the node listen on (kubelet 10250, its healthz 10248, the
# controller-manager 10257, the scheduler 10259, kube-proxy 10249 and 10256)
PORTS=("$API_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" 10248 10250 10257 10259 10249 10256)
CHAIN=BEATLYTICA-EGRESS

k() { KUBECONFIG=$KUBECONFIG_ADMIN "$KUBECTL" "$@"; }

start() { # <name> <command...>: background, output to $LOGS/<name>.log, PID recorded
  local name=$1; shift
  nohup "$@" >"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

wait_until() { # <seconds> <what> <command...>: bounded wait, one-line error naming what failed
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what not reached within ${seconds}s (logs: $LOGS)"
    sleep 1
  done
}

daemon_exited() { # <name>: a daemon that died at start is a clear error with its last log line
  alive "$1" || die "$1 exited at start: $(grep -v '^\s*$' "$LOGS/$1.log" | tail -n 1) (log: $LOGS/$1.log)"
}

port_owner() { { ss -Hltnp "sport = :$1" 2>/dev/null || true; } | sed -n 's/.*users:(("\([^"]*\)".*/\1/p' | head -n 1; }

check_ports() {
  local port owner
  for port in "${PORTS[@]}"; do
    owner=$(port_owner "$port")
    [ -z "$owner" ] || die "port $port is taken by '$owner': stop it first (the local cluster needs ${PORTS[*]})"
  done
}

node_ready() {
  [ "$(k get node "$(node_name)" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# --- the container runtime: Debian's containerd as the kubelet's CRI --------------------------
containerd_up() {
  alive containerd && return
  mkdir -p "$STATE/containerd" "$STATE/cni/net.d" "$STATE/cni/ipam"
  # containerd's defaults, with everything this machine needs changed and said why:
  #   root/state/socket under $STATE; the pause image we build; cgroupfs (no systemd);
  #   restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, a negative oom_score_adj (the
  #   pause container's -998) would kill runc init; the CNI plugins of Debian's package
  containerd config default | sed \
    -e "s#^root = .*#root = \"$CONTAINERD_ROOT\"#" \
    -e "s#^state = .*#state = \"$RUN/containerd-state\"#" \
    -e "s#^\(\s*\)address = \"/run/containerd/containerd.sock\"#\1address = \"$CONTAINERD_SOCK\"#" \
    -e "s#sandbox_image = .*#sandbox_image = \"$PAUSE_IMAGE\"#" \
    -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \
    -e 's#SystemdCgroup = true#SystemdCgroup = false#' \
    -e 's#bin_dir = .*#bin_dir = "/usr/lib/cni"#' \
    -e "s#conf_dir = \"/etc/cni/net.d\"#conf_dir = \"$STATE/cni/net.d\"#" \
    >"$STATE/containerd/config.toml"
  sed -e "s#@BRIDGE@#$BRIDGE#" -e "s#@STATE@#$STATE#" -e "s#@POD_CIDR@#$POD_CIDR#" \
    "$LOCAL_DIR/cni.conflist.in" >"$STATE/cni/net.d/10-beatlytica.conflist"
  # every image pull goes to a closed loopback port: it fails at once, nothing reaches a registry
  HTTP_PROXY=$DEAD_PROXY HTTPS_PROXY=$DEAD_PROXY http_proxy=$DEAD_PROXY https_proxy=$DEAD_PROXY \
    NO_PROXY= no_proxy= start containerd containerd --config "$STATE/containerd/config.toml"
  wait_until 30 "containerd answering on $CONTAINERD_SOCK" ctr -a "$CONTAINERD_SOCK" version
}

# --- egress guards: a chain of our own, jumped to first from FORWARD ----------------------------
guards_up() {
  local up; up=$(uplink)
  [ -n "$up" ] || die "no default route: cannot tell the uplink the egress guards must close"
  cat /proc/sys/net/ipv4/ip_forward >"$STATE/ip_forward.orig"
  iptables -N "$CHAIN" 2>/dev/null || iptables -F "$CHAIN"
  iptables -A "$CHAIN" -s "$POD_CIDR" -o "$up" -j DROP
  iptables -A "$CHAIN" -d "$SERVICE_CIDR" -o "$up" -j DROP
  # pod to pod and host to pod on the bridge (a FORWARD policy of DROP, e.g. Docker's, would
  # otherwise stop Service traffic that kube-proxy rewrites on the bridge)
  iptables -A "$CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  iptables -C FORWARD -j "$CHAIN" 2>/dev/null || iptables -I FORWARD 1 -j "$CHAIN"
  # the same for IPv6: pods have no v6 address, but nothing of theirs may leave either way
  if ip6tables -L >/dev/null 2>&1; then
    ip6tables -N "$CHAIN" 2>/dev/null || ip6tables -F "$CHAIN"
    ip6tables -A "$CHAIN" -i "$BRIDGE" -o "$up" -j DROP
    ip6tables -C FORWARD -j "$CHAIN" 2>/dev/null || ip6tables -I FORWARD 1 -j "$CHAIN"
  fi
}

guards_down() {
  local t
  for t in iptables ip6tables; do
    while $t -D FORWARD -j "$CHAIN" 2>/dev/null; do :; done
    $t -F "$CHAIN" 2>/dev/null || true; $t -X "$CHAIN" 2>/dev/null || true
  done
  [ -f "$STATE/ip_forward.orig" ] && cat "$STATE/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward
  return 0
}

# --- the control plane and the node -----------------------------------------------------------
control_plane_up() {
  local pki=$STATE/pki ip; ip=$(node_ip)
  alive etcd || start etcd "$ETCD_BIN" --name beatlytica --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "beatlytica=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
    --quota-backend-bytes 2147483648
  wait_until 30 "etcd healthy" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
  # the advertise address must be the machine's own (Endpoints refuse loopback)
  alive kube-apiserver || start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=0.0.0.0 --secure-port="$API_PORT" \
    --advertise-address="$ip" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP,Hostname --profiling=false
  wait_until 90 "kube-apiserver /readyz" k get --raw /readyz
  # the API server answers /readyz before its bootstrap RoleBindings can be read; a
  # controller-manager started in that window exits (seen with 1.37)
  wait_until 60 "the API server's bootstrap RBAC" k -n kube-system get rolebinding \
    system::extension-apiserver-authentication-reader
  alive kube-controller-manager || start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$pki/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$pki/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$pki/controller-manager.kubeconfig" \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --use-service-account-credentials=true --bind-address=127.0.0.1 --leader-elect=false \
    --controllers='*,-nodeipam' --profiling=false
  alive kube-scheduler || start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$pki/scheduler.kubeconfig" --authentication-kubeconfig="$pki/scheduler.kubeconfig" \
    --authorization-kubeconfig="$pki/scheduler.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false \
    --profiling=false
}

node_up() {
  local pki=$STATE/pki
  mkdir -p "$STATE/kubelet/pod-logs"
  : >"$STATE/resolv.conf"
  sed -e "s#@STATE@#$STATE#g" -e "s#@DNS_SERVICE_IP@#$DNS_SERVICE_IP#" \
    "$LOCAL_DIR/kubelet-config.yaml.in" >"$STATE/kubelet-config.yaml"
  alive kubelet || start kubelet "$K8S_BIN/kubelet" --kubeconfig="$pki/kubelet.kubeconfig" \
    --config="$STATE/kubelet-config.yaml" --root-dir="$STATE/kubelet" \
    --node-ip="$(node_ip)" --hostname-override="$(node_name)"
  alive kube-proxy || start kube-proxy "$K8S_BIN/kube-proxy" --kubeconfig="$pki/kube-proxy.kubeconfig" \
    --proxy-mode=iptables --cluster-cidr="$POD_CIDR" --hostname-override="$(node_name)" \
    --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256 \
    --conntrack-max-per-core=0
  sleep 2
  daemon_exited kubelet; daemon_exited kube-proxy
  wait_until 120 "node $(node_name) Ready" node_ready
}

# --- add-ons: CoreDNS and the local-path provisioner (the default StorageClass) ---------------
addons_up() {
  local manifest
  for manifest in "$LOCAL_DIR"/addons/*.yaml; do
    sed -e "s#@DNS_SERVICE_IP@#$DNS_SERVICE_IP#g" -e "s#@COREDNS_IMAGE@#$COREDNS_IMAGE#g" \
      -e "s#@LOCAL_PATH_IMAGE@#$LOCAL_PATH_IMAGE#g" -e "s#@HELPER_IMAGE@#$HELPER_IMAGE#g" \
      -e "s#@STORAGE@#$STATE/storage#g" "$manifest" | k apply -f - >/dev/null
  done
  k -n kube-system rollout status deploy/coredns --timeout=120s >/dev/null \
    || die "CoreDNS did not become ready: $(k -n kube-system get pods -l k8s-app=kube-dns --no-headers 2>&1)"
  k -n local-path-storage rollout status deploy/local-path-provisioner --timeout=120s >/dev/null \
    || die "the local-path provisioner did not become ready"
  # CoreDNS answers for the cluster's own names (and, without `forward`, for nothing else)
  wait_until 60 "CoreDNS answering kubernetes.default.svc.cluster.local" dns_answers
}

addons_ready() {
  [ "$(k -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = 1 ] \
    && [ "$(k -n local-path-storage get deploy local-path-provisioner -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = 1 ]
}

dns_answers() {
  local dns; dns=$(k -n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{.items[0].status.podIP}')
  [ -n "$dns" ] && python3 "$LOCAL_DIR/dnsquery.py" "$dns" kubernetes.default.svc.cluster.local | grep -qx "$API_SERVICE_IP"
}

cmd_up() {
  local started=$SECONDS n running=0
  for n in "${DAEMONS[@]}"; do alive "$n" && running=$((running + 1)); done
  if [ $running -eq ${#DAEMONS[@]} ] && node_ready; then
    if ! addons_ready; then addons_up; fi
    say "the local cluster is up (KUBECONFIG=$KUBECONFIG_ADMIN)"; return 0
  fi
  [ $running -eq 0 ] || die "a partial cluster is running ($running of ${#DAEMONS[@]} processes): run 'make cluster-down' first"
  "$LOCAL_DIR/host.sh"
  check_ports
  "$LOCAL_DIR/build.sh"
  mkdir -p "$RUN" "$LOGS"
  [ -f "$STATE/pki/ca.crt" ] || "$LOCAL_DIR/pki.sh"
  "$LOCAL_DIR/images.sh" infra
  containerd_up
  "$LOCAL_DIR/images.sh" import "$PAUSE_IMAGE" "$COREDNS_IMAGE" "$LOCAL_PATH_IMAGE" "$HELPER_IMAGE"
  guards_up
  control_plane_up
  node_up
  addons_up
  # the cluster's own kubectl, for the Makefile targets and a contributor's shell
  mkdir -p "$STATE/bin" && ln -sfn "$KUBECTL" "$STATE/bin/kubectl"
  say "the local cluster is up in $((SECONDS - started)) s: KUBECONFIG=$KUBECONFIG_ADMIN"
}

cmd_down() {
  local n pid ctr_sock=$CONTAINERD_SOCK
  if [ -f "$KUBECONFIG_ADMIN" ] && alive kube-apiserver && alive kubelet; then
    # pods first, so the kubelet unmounts their volumes and tears down their network
    k delete namespace --all --wait=false >/dev/null 2>&1 || true
    k delete pods --all -A --grace-period=2 --timeout=60s >/dev/null 2>&1 || true
  fi
  for n in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do
    pid=$(pid_of "$n"); [ -n "$pid" ] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      say "stopped $n ($pid)"
    fi
    rm -f "$RUN/$n.pid"
  done
  # containers whose pods were not removed: killed through containerd, then containerd itself
  if alive containerd; then
    for id in $(ctr -a "$ctr_sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$ctr_sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $(ctr -a "$ctr_sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$ctr_sock" -n k8s.io tasks delete "$id" >/dev/null 2>&1 || true
    done
    pid=$(pid_of containerd); kill "$pid"
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped containerd ($pid)"
  fi
  rm -f "$RUN/containerd.pid"
  "$LOCAL_DIR/images.sh" docker-down
  # what the kubelet, kube-proxy and the CNI left: KUBE-* chains, mounts, network namespaces,
  # the bridge; then our guards
  [ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1
  local t tb
  for t in iptables ip6tables; do
    # each may be absent (a cluster that never started): not an error
    $t -D INPUT -j KUBE-FIREWALL 2>/dev/null || true; $t -D OUTPUT -j KUBE-FIREWALL 2>/dev/null || true
    $t -F KUBE-FIREWALL 2>/dev/null || true; $t -X KUBE-FIREWALL 2>/dev/null || true
    for tb in filter nat mangle; do
      $t -t "$tb" -F KUBE-KUBELET-CANARY 2>/dev/null || true
      $t -t "$tb" -X KUBE-KUBELET-CANARY 2>/dev/null || true
    done
    $t -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
  done
  grep -o " $STATE/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  grep -o " /run/netns/cni-[^ ]*" /proc/mounts | xargs -r -n1 umount -l 2>/dev/null || true
  rm -f /run/netns/cni-* 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  guards_down
  rm -rf "$STATE"
  verify_down
  say "the local cluster is down"
}

# nothing of the cluster may be left: no process started from its state folder (daemons,
# container shims), no mount under it, no bridge, no guard chain, no kube-proxy or kubelet chain
verify_down() {
  local left=()
  local procs; procs=$(pgrep -f "$STATE/" || true)
  [ -z "$procs" ] || left+=("processes: $(ps -o pid=,comm= -p "${procs//$'\n'/,}" | xargs)")
  grep -q " $STATE/" /proc/mounts && left+=("mounts under $STATE")
  ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("the bridge $BRIDGE")
  iptables -S "$CHAIN" >/dev/null 2>&1 && left+=("the iptables chain $CHAIN")
  iptables-save 2>/dev/null | grep -q '^:KUBE-' && left+=("KUBE-* iptables chains")
  [ ${#left[@]} -eq 0 ] || die "down left: ${left[*]}"
}

cmd_status() {
  local n ok=0
  for n in "${DAEMONS[@]}" dockerd; do
    if alive "$n"; then echo "$n: running ($(pid_of "$n"))"; else echo "$n: stopped"; fi
  done
  node_ready && echo "node $(node_name): Ready" || { echo "node $(node_name): not ready"; ok=1; }
  return $ok
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: cluster.sh up|down|status" ;;
esac
