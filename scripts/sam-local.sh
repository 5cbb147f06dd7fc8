#!/usr/bin/env bash
# `make sam-local`: the two functions in a real Lambda runtime (a container with the runtime interface emulator
# that `sam local` adds), driven by tests/samlocal/ (pytest). Offline: nothing is pulled from a registry.
#
#   scripts/sam-local.sh            # the tools on PATH: sam (.venv/bin first), python3.13; run as root or sudo
#
#   1. docker: the daemon that answers (DOCKER_HOST or the default socket), else one of our own under
#      $HERA_SAM_LOCAL_CACHE/docker (own data root, exec root, pid file, socket and bridge herasam0; no
#      iptables, no masquerading: the containers reach only this machine), stopped again at the end;
#      docker.io and debootstrap are installed with apt when missing
#   2. the base image hera-sessions/lambda-python:3.13 (scripts/sam-local-image.sh; cached by its inputs' hash)
#   3. sam build for the host's architecture into .aws-sam/sam-local/build (not .aws-sam/build: check-sam.sh's)
#   4. pytest tests/samlocal: moto and redis-server on the bridge's gateway address, every file in events/ through
#      `sam local invoke`, the API's core flow through `sam local start-api` + `sam local start-lambda`
#
# Where Docker cannot run at all this prints one line and exits 0, except in CI (CI=true), where it fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

export SAM_CLI_TELEMETRY=0
CACHE=${HERA_SAM_LOCAL_CACHE:-$HOME/.cache/hera-sessions/sam-local}
export HERA_SAM_LOCAL_CACHE=$CACHE
IMAGE=hera-sessions/lambda-python:3.13
BRIDGE=herasam0
BRIDGE_ADDRESS=${HERA_SAM_LOCAL_BRIDGE:-172.30.241.1/24}   # only when we start the daemon (our own bridge)
BUILD_DIR=.aws-sam/sam-local/build
case "$(uname -m)" in
  x86_64 | amd64) ARCH=x86_64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) echo "sam-local: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

started=$(date +%s)
log() { printf '[sam-local %3ss] %s\n' "$(($(date +%s) - started))" "$*"; }
unavailable() {  # Docker cannot run here: skip, except in CI
  if [[ ${CI:-} == true ]]; then
    echo "sam-local: FAIL: $* (CI=true: Docker must run here)" >&2
    exit 1
  fi
  echo "sam-local: skipped: $*"
  exit 0
}

# -- 1. Docker ------------------------------------------------------------------------------------------------
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
missing=()
# a docker client alone (no dockerd, no daemon answering) is not enough: install the daemon
command -v dockerd >/dev/null || docker info >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null && { [[ -z $sudo ]] || command -v sudo >/dev/null; }; then
    log "installing ${missing[*]} (apt)"
    scripts/install-debian-packages.sh "${missing[@]}" || unavailable "could not install ${missing[*]}"
  else
    unavailable "no docker/debootstrap and no apt-get to install them"
  fi
fi

docker_dir="$CACHE/docker"
our_daemon=""
our_bridge=""
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -n $our_daemon ]]; then
    log "stopping our dockerd (pid $our_daemon)"
    # Containers SAM left behind (an interrupted run) go with the daemon's data root; stop them first.
    docker ps -q 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
    kill "$our_daemon" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$our_daemon" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$our_daemon" 2>/dev/null || true
  fi
  [[ -z $our_bridge ]] || $sudo ip link delete "$BRIDGE" 2>/dev/null || true
  log "done (exit $status)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if docker info >/dev/null 2>&1; then
  log "using the Docker daemon that answers (${DOCKER_HOST:-default socket})"
else
  command -v dockerd >/dev/null || unavailable "no Docker daemon answers and dockerd is not installed"
  mkdir -p "$docker_dir"
  export DOCKER_HOST="unix://$docker_dir/docker.sock"
  if ! docker info >/dev/null 2>&1; then
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
      $sudo ip link add "$BRIDGE" type bridge && $sudo ip addr add "$BRIDGE_ADDRESS" dev "$BRIDGE" \
        && $sudo ip link set "$BRIDGE" up || unavailable "cannot create the network bridge $BRIDGE"
      our_bridge=1
    fi
    log "starting dockerd ($docker_dir)"
    $sudo dockerd --host "$DOCKER_HOST" --data-root "$docker_dir/data" --exec-root "$docker_dir/exec" \
      --pidfile "$docker_dir/docker.pid" --bridge "$BRIDGE" --iptables=false --ip-masq=false \
      --ip-forward=false --storage-driver overlay2 >"$docker_dir/dockerd.log" 2>&1 &
    our_daemon=$!
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      kill -0 "$our_daemon" 2>/dev/null || break
      sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
      tail -5 "$docker_dir/dockerd.log" >&2 || true
      unavailable "dockerd does not start here (log: $docker_dir/dockerd.log)"
    fi
  else
    log "using our dockerd already running ($DOCKER_HOST)"
  fi
fi
export DOCKER_HOST=${DOCKER_HOST:-}
[[ -n $DOCKER_HOST ]] || unset DOCKER_HOST

# The address the containers reach this machine on: the default bridge network's gateway.
gateway=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
[[ -n $gateway ]] || gateway=$(ip -4 -o addr show "$BRIDGE" 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4}')
[[ -n $gateway ]] || { echo "sam-local: cannot tell the bridge network's gateway address" >&2; exit 1; }
log "containers reach this machine on $gateway"

# -- 2. the base image ----------------------------------------------------------------------------------------
scripts/sam-local-image.sh "$IMAGE" "$ARCH" 2>&1 | sed -u 's/^/  /'
log "image $IMAGE ready"

# -- 3. sam build ---------------------------------------------------------------------------------------------
mkdir -p .aws-sam/sam-local
log "sam build (Architecture=$ARCH) into $BUILD_DIR"
sam build --template-file template.yaml --build-dir "$BUILD_DIR" --cache-dir .aws-sam/sam-local/cache --cached \
  --parallel --parameter-overrides "Architecture=$ARCH" >.aws-sam/sam-local/build.log 2>&1 \
  || { tail -30 .aws-sam/sam-local/build.log >&2; exit 1; }

# -- 4. the functions in their containers ---------------------------------------------------------------------
log "pytest tests/samlocal"
export HERA_SAM_LOCAL_BUILD="$ROOT/$BUILD_DIR" HERA_SAM_LOCAL_IMAGE=$IMAGE HERA_SAM_LOCAL_GATEWAY=$gateway \
  HERA_SAM_LOCAL_ARCH=$ARCH
"${PYTEST:-.venv/bin/pytest}" tests/samlocal -p no:cacheprovider -o addopts="" -ra -s --timeout 900 ${SAM_LOCAL_PYTEST_ARGS:-}
