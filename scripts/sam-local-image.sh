#!/usr/bin/env bash
# Build the Lambda Python base image that `sam local` runs the functions in, from Debian packages only:
#
#   scripts/sam-local-image.sh IMAGE ARCH      # e.g. hera-sessions/lambda-python:3.13 x86_64 (docker on PATH)
#
# debootstrap (minbase bookworm + the interpreter's shared libraries), the interpreter named by .python-version
# copied to /var/lang, requirements/lambda-runtime.txt (awslambdaric, boto3) in /var/runtime, and a
# /var/runtime/bootstrap that starts awslambdaric - the layout of the public Lambda images, whose runtime
# interface emulator SAM adds itself. Nothing is pulled from a registry. The image carries the hash of its
# inputs as the label org.hera-sessions.inputs; the build is skipped while an image with that hash exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE=$1
ARCH=$2                                   # x86_64 | arm64 (the host's; the interpreter is copied from it)
CACHE=${HERA_SAM_LOCAL_CACHE:-$HOME/.cache/hera-sessions/sam-local}
PY_VERSION=$(cat .python-version)
PYTHON=$(pyenv which python 2>/dev/null || command -v "python$PY_VERSION")
PREFIX=$("$PYTHON" -c 'import sys; print(sys.base_prefix)')
DEB_ARCH=$([[ $ARCH == arm64 ]] && echo arm64 || echo amd64)
PIP_PLATFORM=$([[ $ARCH == arm64 ]] && echo aarch64 || echo x86_64)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=libssl3,libffi8,libsqlite3-0,zlib1g,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libuuid1,libgdbm6,libexpat1,ca-certificates

inputs=$( { cat "${BASH_SOURCE[0]}" requirements/lambda-runtime.txt; "$PYTHON" -VV; echo "$PREFIX $ARCH"; } \
  | sha256sum | cut -c1-16)
have=$(docker image inspect -f '{{index .Config.Labels "org.hera-sessions.inputs"}}' "$IMAGE" 2>/dev/null || true)
if [[ $have == "$inputs" ]]; then
  echo "image $IMAGE is up to date (inputs $inputs)"
  exit 0
fi
echo "building $IMAGE (inputs $inputs; was: ${have:-none})"

work="$CACHE/image-build"
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

echo "  debootstrap --variant=minbase bookworm ($DEB_ARCH)"
debootstrap --variant=minbase --arch="$DEB_ARCH" --include="$PACKAGES" bookworm "$root" "$MIRROR" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

echo "  Python $("$PYTHON" -c 'import platform; print(platform.python_version())') from $PREFIX -> /var/lang"
mkdir -p "$root/var/lang"
tar -C "$PREFIX" -cf - \
  --exclude='lib/python3.*/site-packages/*' --exclude='lib/python3.*/test' --exclude='lib/python3.*/idlelib' \
  --exclude='lib/python3.*/tkinter' --exclude='lib/python3.*/ensurepip' --exclude='lib/python3.*/config-*' \
  --exclude='*.a' --exclude='share' --exclude='include' bin lib | tar -C "$root/var/lang" -xf -

echo "  requirements/lambda-runtime.txt -> /var/runtime"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-compile --no-deps --only-binary=:all: \
  --python-version "$PY_VERSION" --platform "manylinux2014_$PIP_PLATFORM" --platform "manylinux_2_28_$PIP_PLATFORM" \
  --implementation cp --target "$root/var/runtime" -r requirements/lambda-runtime.txt 2>&1 \
  | { grep -v "^WARNING: Location" || true; }

cat >"$root/var/runtime/bootstrap" <<'BOOTSTRAP'
#!/bin/sh
# Lambda's custom-runtime entry point: the runtime interface client serves "$_HANDLER" from /var/task.
export PYTHONPATH="/var/runtime:/opt/python/lib/python3.13/site-packages:/opt/python${PYTHONPATH:+:$PYTHONPATH}"
cd "${LAMBDA_TASK_ROOT:-/var/task}"
exec /var/lang/bin/python3 -m awslambdaric "$_HANDLER"
BOOTSTRAP
chmod +x "$root/var/runtime/bootstrap"
mkdir -p "$root/var/task" "$root/opt"

echo "  docker import"
tar -C "$root" -cf - . | docker import \
  --change "LABEL org.hera-sessions.inputs=$inputs" \
  --change "ENV LANG=en_US.UTF-8 TZ=:UTC LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime" \
  --change "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin" \
  --change "ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib" \
  --change "WORKDIR /var/task" \
  --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
  - "$IMAGE" >/dev/null
docker image prune -f --filter "label=org.hera-sessions.inputs" >/dev/null || true  # the image this replaced
docker image inspect -f "  built {{.Id}} ({{.Size}} bytes)" "$IMAGE"
