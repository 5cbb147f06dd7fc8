#!/usr/bin/env bash
# Assemble gcp/dist/ (or the folder given as $1), the folder `gcloud functions deploy --source=gcp/dist` uploads:
#   main.py, requirements.txt and a copy of the hera_sessions package beside them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dist="${1:-$root/gcp/dist}"

# Only ever replace an earlier package (or an empty folder), never some other folder given by mistake.
if [[ -d "$dist" && -n "$(ls -A "$dist")" && ! -f "$dist/main.py" ]]; then
  echo "$dist is not empty and holds no earlier package: refusing to replace it" >&2
  exit 2
fi
rm -rf "$dist"
mkdir -p "$dist"
cp "$root/gcp/main.py" "$root/gcp/requirements.txt" "$dist/"
cp -R "$root/shared/hera_sessions" "$dist/hera_sessions"
find "$dist" -name __pycache__ -type d -prune -exec rm -rf {} +

echo "$dist ready: $(find "$dist" -type f | wc -l | tr -d ' ') files"
