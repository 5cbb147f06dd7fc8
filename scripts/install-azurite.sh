#!/usr/bin/env bash
# Install Azurite, the Azure Storage emulator the Azure tests start, into .azurite/ (git-ignored), pinned.
# 3.35.0 is the newest release that runs on Node 20 (3.36 needs Node 21, 3.37 Node 22): Debian's nodejs.
set -euo pipefail
VERSION="${AZURITE_VERSION:-3.35.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$ROOT/.azurite"

if ! command -v npm >/dev/null; then
  "$ROOT/scripts/install-debian-packages.sh" nodejs npm
fi
installed="$(node -p "require('$DIR/node_modules/azurite/package.json').version" 2>/dev/null || true)"
if [ "$installed" = "$VERSION" ]; then
  exit 0
fi
echo "Installing azurite@$VERSION into $DIR"
mkdir -p "$DIR"
npm install --prefix "$DIR" --no-audit --no-fund --save-exact --loglevel=error "azurite@$VERSION" >/dev/null
