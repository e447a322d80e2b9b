#!/usr/bin/env bash
# Images for the local cluster, built here and imported into its containerd; none is pulled.
#
#   images.sh docker-up        start the Docker engine (Debian's docker.io) on our own socket
#   images.sh docker-down      stop it by its recorded PID
#   images.sh infra            the cluster's own images (pause, CoreDNS, local-path, the Debian base)
#   images.sh standins         test-only stand-ins of the upstream base images (images/standins/)
#   images.sh project          the six Beatlytica images, the targets of images/Dockerfile, unchanged
#                              (BEATLYTICA_IMAGE_TAG names the tag), and the local Kafka broker
#   images.sh import IMAGE...  into the cluster's containerd (k8s.io namespace), if not there yet
#   images.sh import-project   the project's images and the Kafka broker's, the same way
#   images.sh prune            drop project images of other tags and untagged leftovers, from
#                              the engine and from containerd (both live in the cache)
#   images.sh list             the project's images (skaffold.yaml's artifacts, their one home)
#
# The engine's data lives in the cache ($DOCKER_ROOT), so a second build reuses every layer.
source "$(dirname "$0")/lib.sh"

STANDINS_DIR=$ROOT/images/standins
# in build order: a stand-in may start FROM one built before it
STANDINS=(python maven spark spark-operator airflow postgres fake-gcs-server)
# the project's images are skaffold.yaml's artifacts, a target of images/Dockerfile each
mapfile -t PROJECT_IMAGES < <(sed -n 's|^ *- image: beatlytica/beatlytica-\([a-z0-9-]*\)$|\1|p' "$ROOT/skaffold.yaml")
[ "${#PROJECT_IMAGES[@]}" -gt 0 ] || die "no beatlytica/beatlytica-<name> artifact in $ROOT/skaffold.yaml"
# stand-ins the platform runs as they are: Airflow's Postgres and fake-gcs-server (the chart's
# values name them), the Spark operator (its chart's default image)
RUNTIME_STANDINS=(postgres fake-gcs-server spark-operator)

docker_up() {
  if alive dockerd && docker info >/dev/null 2>&1; then return; fi
  # the engine's data is shared by every clone (the cache); a second engine on it would wait
  # for the first one's database lock and time out
  local other
  other=$(pgrep -f -- "dockerd --data-root $DOCKER_ROOT " | grep -vx "$(pid_of dockerd)" | head -n 1 || true)
  [ -z "$other" ] || die "another Docker engine (PID $other: $(tr '\0' ' ' </proc/"$other"/cmdline \
    | grep -o -- '--exec-root [^ ]*')) uses $DOCKER_ROOT; stop it first (make cluster-down in its clone)"
  mkdir -p "$RUN" "$LOGS" "$DOCKER_ROOT"
  # no bridge, no iptables rules, no masquerading: builds run with --network host, and the
  # engine adds nothing to the host's network that `down` would have to remove
  nohup dockerd --data-root "$DOCKER_ROOT" --exec-root "$RUN/docker-exec" --pidfile "$RUN/dockerd.pid" \
    -H "$DOCKER_HOST" --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
    --storage-driver=overlay2 >"$LOGS/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
  die "the Docker engine did not start: $(tail -n 1 "$LOGS/dockerd.log") (log: $LOGS/dockerd.log)"
}

docker_down() {
  local pid; pid=$(pid_of dockerd)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid"
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  say "stopped dockerd ($pid)"
}

have() { docker image inspect "$1" >/dev/null 2>&1; }

# --- the Debian base: debootstrap (minbase) from the Debian mirror, kept in the cache ----------
DEBIAN_ROOTFS=$CACHE/debian-bookworm/rootfs
base() {
  have "$HELPER_IMAGE" && have debian:bookworm-slim && return
  command -v debootstrap >/dev/null || die "debootstrap is not installed (k8s/local/host.sh installs it)"
  if [ ! -f "$DEBIAN_ROOTFS/.done" ]; then
    say "debootstrap bookworm (minbase) into $DEBIAN_ROOTFS"
    rm -rf "$DEBIAN_ROOTFS" && mkdir -p "$DEBIAN_ROOTFS"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$DEBIAN_ROOTFS" \
      http://deb.debian.org/debian >"${TMPDIR:-/tmp}/beatlytica-debootstrap.log" 2>&1 \
      || die "debootstrap failed (log: ${TMPDIR:-/tmp}/beatlytica-debootstrap.log)"
    rm -rf "$DEBIAN_ROOTFS"/var/cache/apt/archives/*.deb "$DEBIAN_ROOTFS"/var/lib/apt/lists/*
    touch "$DEBIAN_ROOTFS/.done"
  fi
  # Test-only: the machine's own extra CA certificates (a TLS-inspecting egress proxy here),
  # so that apt, pip, uv and Maven inside image builds reach the registries. Only stand-ins
  # carry them; they never go into an image a user builds.
  local ca=$DEBIAN_ROOTFS/usr/local/share/ca-certificates
  mkdir -p "$ca" && find "$ca" -name '*.crt' -delete
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ca/"
  fi
  chroot "$DEBIAN_ROOTFS" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates in the Debian base failed"
  tar -C "$DEBIAN_ROOTFS" --exclude=./.done -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  docker tag debian:bookworm-slim "$HELPER_IMAGE"
  say "built debian:bookworm-slim (stand-in, from debootstrap) and $HELPER_IMAGE"
}

# a single static binary as a one-file image: import_binary <image> <binary> <path in image>
import_binary() {
  have "$1" && return
  local dir; dir=$(mktemp -d)
  mkdir -p "$dir/$(dirname "$3")" && cp "$2" "$dir/$3"
  tar -C "$dir" -c . | docker import --change "ENTRYPOINT [\"/$3\"]" - "$1" >/dev/null
  rm -rf "$dir"
  say "built $1"
}

infra() {
  docker_up
  base
  import_binary "$PAUSE_IMAGE" "$PAUSE_BIN" pause
  import_binary "$COREDNS_IMAGE" "$COREDNS_BIN" coredns
  import_binary "$LOCAL_PATH_IMAGE" "$LOCAL_PATH_BIN" usr/bin/local-path-provisioner
}

# the upstream name a stand-in replaces: the `# stand-in for:` line of its Dockerfile
standin_tag() { sed -n 's/^# stand-in for: *//p' "$STANDINS_DIR/$1/Dockerfile" | head -n 1; }

build() { # <tag> <docker build arguments...>
  local tag=$1 start=$SECONDS log; shift
  log="$LOGS/build-$(echo "$tag" | tr '/:' '__').log"
  mkdir -p "$LOGS"
  docker build --network host -t "$tag" "$@" >"$log" 2>&1 \
    || die "building $tag failed: $(grep -v '^\s*$' "$log" | tail -n 1) (log: $log)"
  say "built $tag in $((SECONDS - start)) s"
}

# the build context of a stand-in: its folder, plus the binary its Dockerfile names, built
# from the Go module proxy into the cache (keyed by module version):
#   # go install: <module>@<version>                   `go install` of a main package
#   # go build: <module>@<version> <package> <binary>  a module whose go.mod replaces modules
#                                                       (not go-installable): built in a copy
standin_context() { # <name> -> prints the context folder
  local dir=$STANDINS_DIR/$1 install build
  install=$(sed -n 's/^# go install: *//p' "$dir/Dockerfile" | head -n 1)
  build=$(sed -n 's/^# go build: *//p' "$dir/Dockerfile" | head -n 1)
  if [ -z "$install$build" ]; then echo "$dir"; return; fi
  command -v go >/dev/null || die "Go is not installed (the $1 stand-in builds ${install:-$build})"
  local module package binary
  if [ -n "$install" ]; then
    module=$install binary=${install%@*} && binary=${binary##*/}
  else
    read -r module package binary <<<"$build"
  fi
  local out=$CACHE/go/${module//\//_}
  if [ ! -x "$out/$binary" ]; then
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    if [ -n "$install" ]; then
      CGO_ENABLED=0 GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" "$module" >&2 \
        || die "go install $module failed"
    else
      local source
      source=$(go mod download -json "$module" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
      [ -d "$source" ] || die "go mod download $module failed"
      cp -r "$source" "$out.tmp/src" && chmod -R u+w "$out.tmp/src"
      (cd "$out.tmp/src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/$binary" "$package") >&2 \
        || die "go build $package of $module failed"
      rm -rf "$out.tmp/src"
    fi
    rm -rf "$out" && mv "$out.tmp" "$out"
  fi
  local context; context=$(mktemp -d)
  cp -r "$dir/." "$context/" && cp "$out/$binary" "$context/"
  echo "$context"
}

standins() {
  docker_up
  base
  local name tag context
  for name in "${STANDINS[@]}"; do
    tag=$(standin_tag "$name")
    [ -n "$tag" ] || die "images/standins/$name/Dockerfile has no '# stand-in for: <image>' line"
    context=$(standin_context "$name")
    build "$tag" "$context"
    [ "$context" = "$STANDINS_DIR/$name" ] || rm -rf "$context"
  done
}

project() {
  local tag=${BEATLYTICA_IMAGE_TAG:?set BEATLYTICA_IMAGE_TAG (the Makefile computes it)} name
  standins
  # the Dockerfile's upstream images (its `ARG <NAME>_IMAGE=<tag>@sha256:<digest>` lines), by
  # tag alone: the stand-ins carry the tags, not upstream's digests
  local bases=() arg
  while read -r arg; do bases+=(--build-arg "${arg%@sha256:*}"); done \
    < <(sed -n 's/^ARG \([A-Z_]*_IMAGE=[^ ]*\)$/\1/p' "$ROOT/images/Dockerfile")
  [ "${#bases[@]}" -gt 0 ] || die "images/Dockerfile names no ARG <NAME>_IMAGE=<image>"
  for name in "${PROJECT_IMAGES[@]}"; do
    build "beatlytica/beatlytica-$name:$tag" -f "$ROOT/images/Dockerfile" "${bases[@]}" --target "$name" "$ROOT"
  done
  # the local broker: its folder and the embedded broker's pom (the same Kafka jars)
  local context; context=$(mktemp -d)
  cp "$LOCAL_DIR/kafka/Dockerfile" "$LOCAL_DIR/kafka/start.sh" "$context/"
  cp "$ROOT/jars/kafka/pom.xml" "$context/pom.xml"
  build "$KAFKA_IMAGE" "$context"
  rm -rf "$context"
  prune_engine
}

# Each commit's images carry their own tag (the Makefile's content hash), and the engine's and
# containerd's stores live in the cache: without pruning, every run would leave ~5 GB behind
# until the disk fills. Only the current tag's project images are kept; the stand-ins and
# the cluster's own images keep their fixed tags and are reused.
stale_project_images() { # <tag> <image names, one per line on stdin> -> the other tags' names
  grep -E '(^|/)beatlytica/beatlytica-[a-z]+:' | grep -v ":$1\$" || true
}

prune_engine() {
  local tag=${BEATLYTICA_IMAGE_TAG:?set BEATLYTICA_IMAGE_TAG (the Makefile computes it)} stale before
  before=$(docker system df --format '{{.Type}} {{.Size}}' | awk '$1 == "Images" {print $2}')
  mapfile -t stale < <(docker images --format '{{.Repository}}:{{.Tag}}' | stale_project_images "$tag")
  [ ${#stale[@]} -eq 0 ] || docker rmi "${stale[@]}" >/dev/null
  # the engine only builds: a container in it is a leftover (of a build cut short) that would
  # keep its image alive
  docker container prune -f >/dev/null
  docker image prune -f >/dev/null
  docker builder prune -f >/dev/null 2>&1 || true
  say "pruned ${#stale[@]} image(s) of other tags and the untagged ones (engine's images: $before before)"
}

prune_containerd() {
  local tag=${BEATLYTICA_IMAGE_TAG:?set BEATLYTICA_IMAGE_TAG (the Makefile computes it)} stale ids=() name id
  [ -S "$CONTAINERD_SOCK" ] || return 0
  mapfile -t stale < <(ctr -a "$CONTAINERD_SOCK" -n k8s.io images ls -q | stale_project_images "$tag")
  [ ${#stale[@]} -gt 0 ] || return 0
  # the kubelet's runtime also names each image by its id (sha256:<config digest>); that name
  # would keep the layers alive, so it goes too
  for name in "${stale[@]}"; do
    id=$(containerd_image_id "$name") && [ -n "$id" ] && ids+=("$id")
  done
  ctr -a "$CONTAINERD_SOCK" -n k8s.io images rm --sync "${stale[@]}" >/dev/null
  for id in "${ids[@]}"; do
    ctr -a "$CONTAINERD_SOCK" -n k8s.io images rm --sync "$id" >/dev/null 2>&1 || true
  done
  say "pruned ${#stale[@]} image(s) of other tags from the cluster"
}

# containerd's name of an image: Docker's short names live under docker.io (and library/)
containerd_ref() {
  local name=$1 first=${1%%/*}
  if [[ $name != */* ]]; then name=docker.io/library/$name
  elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then name=docker.io/$name; fi
  echo "$name"
}

# the image id (its config's digest) containerd holds under a name, empty if none: read from
# containerd itself, so a store that lost an image never passes for one that has it
containerd_image_id() {
  local manifest
  manifest=$(ctr -a "$CONTAINERD_SOCK" -n k8s.io images ls "name==$(containerd_ref "$1")" 2>/dev/null \
    | awk 'NR == 2 {print $3}') || true
  [ -n "$manifest" ] || return 0
  ctr -a "$CONTAINERD_SOCK" -n k8s.io content get "$manifest" 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null || true
}

import() {
  [ -S "$CONTAINERD_SOCK" ] || die "the cluster's containerd is not running (make cluster-up)"
  # an image is imported unless containerd already holds the engine's build of it (same id): a
  # rebuilt image under the same tag (a stand-in, the local broker) is imported again
  local image missing=()
  for image in "$@"; do
    have "$image" || die "image $image is not built"
    [ "$(containerd_image_id "$image")" = "$(docker image inspect -f '{{.Id}}' "$image")" ] \
      || missing+=("$image")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  local start=$SECONDS
  docker save "${missing[@]}" | ctr -a "$CONTAINERD_SOCK" -n k8s.io images import - >/dev/null \
    || die "importing ${missing[*]} into containerd failed"
  for image in "${missing[@]}"; do
    [ "$(containerd_image_id "$image")" = "$(docker image inspect -f '{{.Id}}' "$image")" ] \
      || die "containerd does not hold $image after importing it"
  done
  say "imported ${#missing[@]} image(s) into the cluster in $((SECONDS - start)) s: ${missing[*]}"
}

import_project() {
  local tag=${BEATLYTICA_IMAGE_TAG:?set BEATLYTICA_IMAGE_TAG (the Makefile computes it)} name images=()
  for name in "${PROJECT_IMAGES[@]}"; do images+=("beatlytica/beatlytica-$name:$tag"); done
  # stand-ins that run as pods as they are
  for name in "${RUNTIME_STANDINS[@]}"; do images+=("$(standin_tag "$name")"); done
  import "${images[@]}" "$KAFKA_IMAGE"
  prune_containerd
}

case "${1:-}" in
  docker-up) docker_up ;;
  docker-down) docker_down ;;
  infra) infra ;;
  standins) standins ;;
  project) project ;;
  import) shift; import "$@" ;;
  import-project) import_project ;;
  prune) docker_up; prune_engine; prune_containerd ;;
  list) printf '%s\n' "${PROJECT_IMAGES[@]}" ;;
  *) die "usage: images.sh docker-up|docker-down|infra|standins|project|import IMAGE...|import-project|prune|list" ;;
esac
