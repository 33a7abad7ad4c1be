#!/usr/bin/env bash
# README command 2 (`make test`): every test tier, each a script under tests/ (TESTING.md says
# what each proves). Pass servers to restrict:  scripts/test.sh pg18
# Each tier ends with one line `result: P passed, S skipped, F failed (unit)`; a tier fails when
# its script fails, prints no such line, or ran nothing. Every tier runs even after a failure;
# the summary lists each tier's counts and duration, and the total counts every test once per
# server it runs on (a tier of both servers counts its tests on each).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(pg15 pg18)
cd "$root"
"$root/scripts/setup.sh" || exit 1

# name, script (under tests/), servers: "once" (no server), "all", or the one server it needs.
# A tier runs on one server where a second adds nothing: the fuzzed argument checks, the
# on-disk scan, crash and power-failure recovery, the window buffer counts and the reference
# are the same code and catalog on both; the routing check needs auto_explain, which only the
# Debian PG 15 ships here.
tiers=(
  "unit            unit.sh            once"
  "libfuzzer       libfuzzer.sh       once"
  "pg_test         pg_test.sh         all"
  "regress         regress.sh         all"
  "isolation       isolation.sh       all"
  "concurrency     concurrency.sh     all"
  "fuzz_sql        fuzz_sql.sh        pg18"
  "plaintext_scan  plaintext_scan.sh  pg18"
  "crash           crash.sh           pg18"
  "power_failure   power_failure.sh   pg18"
  "window_scale    window_scale.sh    pg18"
  "reference       reference.sh       pg18"
  "observability   observability.sh   all"
  "dump_restore    dump_restore.sh    all"
  "replica         replica.sh         all"
  "tenant_routing  tenant_routing.sh  pg15"
  "upgrade         upgrade.sh         all"
  "package         package.sh         all"
  "clients         clients.sh         all"
  "clients_ts      clients_ts.sh      all"
)

# The plan: every (tier, server) this run will execute, in order.
plan=()
for t in "${tiers[@]}"; do
  read -r name script where <<<"$t"
  [ "$where" = once ] && plan+=("$name $script -")
done
# cargo pgrx test installs its own build (with the test functions of schema tests): the tiers
# of installed builds come after it, each server's build installed once.
for server in "${servers[@]}"; do
  plan+=("pg_test pg_test.sh $server" "install install $server")
  for t in "${tiers[@]}"; do
    read -r name script where <<<"$t"
    [ "$name" != pg_test ] || continue
    if [ "$where" = all ] || [ "$where" = "$server" ]; then plan+=("$name $script $server"); fi
  done
done
echo "==> tiers to run:"
for p in "${plan[@]}"; do read -r name script server <<<"$p"; printf '    %-15s %s\n' "$name" "$server"; done

logs="$root/tmp/tiers"
mkdir -p "$logs"
summary=() total_passed=0 total_skipped=0 total_failed=0 failures=() installed=()
for p in "${plan[@]}"; do
  read -r name script server <<<"$p"
  start=$SECONDS
  log="$logs/$name-$server.log"
  [ "$server" = - ] && log="$logs/$name.log"
  echo "==> $name ${server/#-/}"
  if [ "$name" = install ]; then
    if "$root/scripts/install.sh" "$server"; then installed+=("$server"); else failures+=("install $server"); fi
    summary+=("$(printf '%-15s %-5s %37s %5d s' install "$server" "" $((SECONDS - start)))")
    continue
  fi
  if [ "$server" != - ] && [ "$name" != pg_test ] && [[ " ${installed[*]} " != *" $server "* ]]; then
    failures+=("$name $server (not run: the install failed)")
    continue
  fi
  args=()
  [ "$server" = - ] || args=("$server")
  "$root/tests/$script" "${args[@]}" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  line=$(grep -E '^result: [0-9]+ passed, [0-9]+ skipped, [0-9]+ failed' "$log" | tail -n1)
  read -r passed skipped failed <<<"$(sed -E 's/^result: ([0-9]+) passed, ([0-9]+) skipped, ([0-9]+) failed.*/\1 \2 \3/' <<<"${line:-result: 0 passed, 0 skipped, 0 failed}")"
  unit=$(sed -E 's/^result: [^(]*\((.*)\)$/\1/' <<<"$line")
  verdict=ok
  if [ "$status" != 0 ]; then
    verdict=FAILED
    [ "$failed" -gt 0 ] || failed=1
  elif [ -z "$line" ]; then
    verdict="FAILED (no result line)"; failed=1
  elif [ "$failed" -gt 0 ]; then
    verdict="FAILED (failures reported)"
  elif [ $((passed + failed)) = 0 ] && [ "$skipped" = 0 ]; then
    verdict="FAILED (ran nothing)"; failed=1
  elif [ $((passed + failed)) = 0 ]; then
    verdict=SKIPPED
  fi
  [ "${verdict%% *}" = FAILED ] && failures+=("$name ${server/#-/}: $verdict (log: ${log#"$root"/})")
  total_passed=$((total_passed + passed)) total_skipped=$((total_skipped + skipped)) total_failed=$((total_failed + failed))
  summary+=("$(printf '%-15s %-5s %5d passed %4d skipped %3d failed %5d s  %s — %s' "$name" "${server/#-/}" \
    "$passed" "$skipped" "$failed" $((SECONDS - start)) "$verdict" "${unit:-}")")
done

echo "==> summary (each test counted once per server it runs on, in its tier's unit)"
printf '  %s\n' "${summary[@]}"
echo "ctxstore: $total_passed passed, $total_skipped skipped, $total_failed failed in $SECONDS s"
if [ ${#failures[@]} -gt 0 ]; then
  echo "FAILED tiers:"; printf '  %s\n' "${failures[@]}"
  exit 1
fi
