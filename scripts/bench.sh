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
# The peers' Python packages and ctxstore's own adapters (P7), pinned, in their own venv.
bench_venv="$root/.venv-bench"
ensure_venv "$bench_venv" "$root/benches/requirements.txt"
# P9 runs Mastra's memory through clients/typescript (Node, its pinned lockfile)
"$root/scripts/node.sh" check
if ! cmp -s "$root/clients/typescript/package-lock.json" "$root/clients/typescript/node_modules/.package-lock.json" 2>/dev/null; then
  (cd "$root/clients/typescript" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
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
