#!/usr/bin/env bash
# Installs what rhip needs on a fresh Debian 12 machine: Debian packages (only
# those missing) and the npm packages pinned by package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake ninja-build ccache pkg-config git
      libboost-dev libboost-system-dev rapidjson-dev libsimdjson-dev libcli11-dev
      libfmt-dev libspdlog-dev libsqlite3-dev sqlite3 libssl-dev libicu-dev libzstd-dev
      libopencc-dev libpq-dev libsodium-dev libgtest-dev libgmock-dev libbenchmark-dev
      nodejs npm wrk zstd)
# `install-deps.sh fuzz` (make fuzz-build): clang and libFuzzer for the fuzz build.
if [ "${1:-}" = fuzz ]; then
  PKGS+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # node/npm may come from the image rather than Debian: do not fight it.
  if command -v node >/dev/null 2>&1; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
  fi
  read -r -a missing <<<"${missing[*]}"
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages: reinstall only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.rhip-lock; then
  echo "[deps] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.rhip-lock
fi
