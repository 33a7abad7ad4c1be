#!/usr/bin/env bash
# The pure kernels without Postgres: unit tests of src/core, the counter-bump announcement and the
# kept catalog lookups (cargo test --lib), and the property tests (tests/properties.rs, proptest). Each test counts once.
source "$(dirname "$0")/lib.sh"
cd "$root"
scratch_dir
cargo test --lib -- core:: services::counter_bump:: services::catalog_cache:: 2>&1 | tee "$work/unit.log"
cargo test --test properties 2>&1 | tee -a "$work/unit.log"
# "test result: ok. 74 passed; 0 failed; 0 ignored; ..." per test binary
sum() { grep -Eo "[0-9]+ $1" "$work/unit.log" | grep -Eo '[0-9]+' | awk '{ s += $1 } END { print s + 0 }'; }
result "$(grep -E '^test result' "$work/unit.log" | sum passed)" \
       "$(grep -E '^test result' "$work/unit.log" | sum ignored)" \
       "$(grep -E '^test result' "$work/unit.log" | sum failed)" "unit and property tests"
