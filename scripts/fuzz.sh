#!/usr/bin/env bash
# libFuzzer runs of the core parsers (tests/fuzz):   fuzz.sh [seconds per target, default 30] [target...]
# cargo-fuzz needs nightly compiler flags; on the stable toolchain RUSTC_BOOTSTRAP=1 enables them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
mkdir -p "$root/tmp"
seconds=${1:-30}; shift || true
if ! cargo fuzz --version 2>/dev/null | grep -q 0.13.2; then cargo install --locked cargo-fuzz --version 0.13.2; fi
cd "$root"
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
  # (not in a process substitution: a failing list must stop the run, not yield no targets)
  list=$(RUSTC_BOOTSTRAP=1 cargo fuzz list --fuzz-dir tests/fuzz)
  mapfile -t targets <<<"$list"
fi
[ -n "${targets[0]:-}" ] || { echo "FAILED: no fuzz targets" >&2; exit 1; }
runs=0
for t in "${targets[@]}"; do
  # a crash or sanitizer report ends the run with an error and a reproducer under tests/fuzz/artifacts
  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz "$t" -- -max_total_time="$seconds" > "$root/tmp/fuzz-$t.log" 2>&1 \
    || { tail -n 40 "$root/tmp/fuzz-$t.log" >&2; echo "FAILED: fuzz target $t" >&2; exit 1; }
  n=$(grep -Eo '^Done [0-9]+ runs' "$root/tmp/fuzz-$t.log" | grep -Eo '[0-9]+' || echo 0)
  [ "$n" -gt 0 ] || { tail -n 20 "$root/tmp/fuzz-$t.log" >&2; echo "FAILED: fuzz target $t made no run" >&2; exit 1; }
  echo "fuzz $t: $n runs in ${seconds}s, no crash"
  runs=$((runs + n))
done
echo "fuzz targets: ${#targets[@]} passed ($runs runs)"
# the instrumented build is GBs: CI deletes it once the targets ran
if [ -n "${CTXSTORE_CI:-}" ]; then rm -rf "$root/tests/fuzz/target"; fi
