#!/usr/bin/env bash
# The host's prerequisites for the local cluster: root, cgroups, the Debian packages (installed
# here when missing: Docker engine, containerd, runc, CNI plugins, iptables, debootstrap, ...).
# Each missing piece is one line naming it and a non-zero exit.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "not root: the kubelet, containerd, the CNI bridge and iptables need root (run as root, or use kind: make kind-up)"
[ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] \
  || die "no cgroups: neither cgroup v1 (/sys/fs/cgroup/memory) nor v2 (/sys/fs/cgroup/cgroup.controllers) is mounted"
command -v apt-get >/dev/null || die "apt-get not found: the local cluster installs its runtime from Debian packages"

# command (or file) -> Debian package
PACKAGES=(
  dockerd:docker.io containerd:containerd runc:runc debootstrap:debootstrap
  /usr/lib/cni/bridge:containernetworking-plugins iptables:iptables conntrack:conntrack
  socat:socat ethtool:ethtool ebtables:ebtables ip:iproute2 openssl:openssl curl:curl
)
missing=()
for entry in "${PACKAGES[@]}"; do
  what=${entry%%:*} package=${entry#*:}
  if [[ $what == /* ]]; then [ -e "$what" ] || missing+=("$package")
  else command -v "$what" >/dev/null || missing+=("$package"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"${TMPDIR:-/tmp}/beatlytica-apt.log" 2>&1 \
    || die "apt-get install ${missing[*]} failed (log: ${TMPDIR:-/tmp}/beatlytica-apt.log)"
fi
