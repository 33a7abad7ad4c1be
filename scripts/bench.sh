#!/usr/bin/env bash
# make bench / make bench-quick: ctxstore against the peers on a throwaway PG 18 + pgvector
# cluster (benches/peers.py writes BENCHMARKS.md and charts); the full run also runs the
# criterion kernels first.   scripts/bench.sh [--quick]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
quick=()
if [ "${1:-}" = --quick ]; then quick=(--quick); fi
log() { echo "bench: $*" >&2; }

"$root/scripts/setup.sh"
# The peers' Python packages, pinned, in their own venv (reinstalled when the pins change).
bench_venv="$root/.venv-bench"
requirements="$root/benches/requirements.txt"
want=$(cat "$requirements" "$root/clients/python/pyproject.toml" | sha256sum)
if ! [ -x "$bench_venv/bin/python" ] || [ "$(cat "$bench_venv/.requirements" 2>/dev/null)" != "$want" ]; then
  log "installing the peers' packages into $bench_venv"
  python3 -m venv "$bench_venv"
  "$bench_venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  # ctxstore's own adapters (P7), from this tree
  "$bench_venv/bin/pip" install -q --disable-pip-version-check --no-deps -e "$root/clients/python"
  echo "$want" > "$bench_venv/.requirements"
fi
log "building and installing the release build into PG 18"
"$root/scripts/install.sh" pg18 --release
args=("${quick[@]}")
if [ ${#quick[@]} -eq 0 ]; then
  log "criterion kernels"
  rm -rf "$root/target/criterion"
  (cd "$root" && cargo bench --bench kernels)
  args+=(--kernels)
fi
"$bench_venv/bin/python" "$root/benches/peers.py" "${args[@]}"
