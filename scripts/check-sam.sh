#!/usr/bin/env bash
# Validate the SAM application and prove its packaging - offline: no AWS credentials, no Docker.
#
#   scripts/check-sam.sh        # tools on PATH: sam, cfn-lint, python3.13 (the caller puts .venv/bin first)
#
#   1. sam validate --lint, then cfn-lint, on template.yaml
#   2. sam build into .aws-sam/build (installs shared/requirements.txt into the layer, for its architecture)
#   3. for each function, import the built handler in a fresh python3.13 whose only paths besides the
#      standard library are the built function folder and the built layer's python/ folder - what Lambda
#      puts on sys.path. boto3 is not there (the Lambda runtime provides it): importing must not need it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

export SAM_CLI_TELEMETRY=0
# sam validate needs a region (not credentials).
export AWS_REGION="${AWS_REGION:-ap-northeast-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"

PYTHON="${PYTHON:-python3.13}"
BUILD_DIR=.aws-sam/build          # sam build's default
LAYER=SharedLayer                 # logical ids in template.yaml
FUNCTIONS=(ApiFunction StorageEventsFunction)

step() { printf '\n== %s\n' "$*"; }

for tool in sam cfn-lint "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "missing tool on PATH: $tool" >&2; exit 2; }
done

step "sam validate --lint"
sam validate --lint --template-file template.yaml --region "$AWS_REGION"

step "cfn-lint template.yaml"
cfn-lint template.yaml

step "sam build"
# No --use-container: for the layer pip fetches wheels for its BuildArchitecture (needs PyPI).
sam build --template-file template.yaml --build-dir "$BUILD_DIR" --cached --parallel

layer_python="$ROOT/$BUILD_DIR/$LAYER/python"
for package in hera_sessions aws_lambda_powertools redis; do
  [[ -d "$layer_python/$package" ]] || { echo "FAIL: the layer has no $package in $layer_python" >&2; exit 1; }
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The layer is built for the template's Architecture (arm64). Its compiled extensions (orjson) cannot load on
# another host: check they are built for the layer's architecture, and import with this host's build of the same
# pinned versions in front (make sam-local runs the whole build for this host's architecture in a Lambda runtime).
native="$scratch/native"
mkdir -p "$native"
layer_arch=$(grep -A3 '^  Architecture:' template.yaml | sed -n 's/^ *Default: *//p')
host_arch=$(uname -m)
case "$host_arch" in aarch64 | arm64) host_arch=arm64 ;; x86_64 | amd64) host_arch=x86_64 ;; esac
if [[ "$layer_arch" != "$host_arch" ]]; then
  step "compiled extensions in the layer are $layer_arch; this host ($host_arch) imports its own build of them"
  mapfile -t compiled < <(cd "$layer_python" && grep -l '\.so,' ./*.dist-info/RECORD | sed 's|^\./||; s|\.dist-info/RECORD$||')
  for dist in "${compiled[@]}"; do
    want=aarch64; [[ "$layer_arch" == x86_64 ]] && want=x86-64
    while read -r so; do
      file -b "$layer_python/$so" | grep -q "$want" || { echo "FAIL: $so is not built for $layer_arch" >&2; exit 1; }
    done < <(grep -o '^[^,]*\.so' "$layer_python/$dist.dist-info/RECORD")
    echo "ok: ${dist%-*} ${dist##*-} ($layer_arch)"
    "$PYTHON" -m pip install --quiet --no-deps --target "$native" "${dist%-*}==${dist##*-}"
  done
fi

status=0
for fn in "${FUNCTIONS[@]}"; do
  step "import $fn's app.lambda_handler from the build"
  fn_dir="$ROOT/$BUILD_DIR/$fn"
  # env -i: nothing leaks in from the caller (no virtualenv, no credentials). python -S: no site-packages;
  # -P: the current directory is not on sys.path either. Settings for a local, offline import.
  if (cd "$scratch" && env -i \
        PATH="$PATH" \
        HOME="$scratch" \
        PYTHONPATH="$fn_dir:$native:$layer_python" \
        PYTHONDONTWRITEBYTECODE=1 \
        AWS_REGION="$AWS_REGION" \
        STORAGE_MODE=local \
        SESSION_TYPE=local \
        SESSIONS_DIR="$scratch/sessions" \
        POWERTOOLS_SERVICE_NAME=hera-sessions \
        POWERTOOLS_METRICS_NAMESPACE=HeraSessions \
        POWERTOOLS_TRACE_DISABLED=true \
        "$PYTHON" -S -P -c '
import app
assert callable(getattr(app, "lambda_handler", None)), "app.lambda_handler is missing"
print("ok:", app.__file__)
'); then
    :
  else
    echo "FAIL: $fn: app.lambda_handler does not import from $fn_dir + $layer_python" >&2
    status=1
  fi
done

[[ $status -eq 0 ]] && step "all SAM checks passed"
exit "$status"
