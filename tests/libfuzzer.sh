#!/usr/bin/env bash
# libFuzzer targets of the core parsers (tests/fuzz), a bounded slice:   libfuzzer.sh [SECONDS]
# (scripts/fuzz.sh runs them longer). A target that made no run fails.
source "$(dirname "$0")/lib.sh"
scratch_dir
"$root/scripts/fuzz.sh" "${1:-${CTXSTORE_FUZZ_SECONDS:-10}}" | tee "$work/fuzz.log"
targets=$(sed -n 's/^fuzz targets: \([0-9]*\) passed.*/\1/p' "$work/fuzz.log")
[ "${targets:-0}" -gt 0 ] || fail "no fuzz target ran"
result "$targets" 0 0 "fuzz targets, $(grep -Eo '\([0-9]+ runs\)' "$work/fuzz.log" | tail -n1 | tr -d '()')"
