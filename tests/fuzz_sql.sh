#!/usr/bin/env bash
# SQL-level fuzz test: every ctx.* function called with generated bad inputs (tests/fuzz_sql.py).
# Passes when the server never crashed (same postmaster, no backend terminated by a signal) and
# every rejection carried a specific SQLSTATE (never XX000, internal error).
#   fuzz_sql.sh pg15|pg18 [CASES_PER_FUNCTION [SEED]]   (after scripts/install.sh)
source "$(dirname "$0")/lib.sh"
per_function=${2:-${CTXSTORE_FUZZ_CASES:-150}} seed=${3:-${CTXSTORE_FUZZ_SEED:-20261126}}
throwaway_cluster "$1" fuzz-sql $((56300 + ${1#pg}))
scratch_dir

pid_before=$(sudo -u postgres head -n1 "$datadir/postmaster.pid")
log_lines=$(wc -l < "$datadir/server.log")
psql -d postgres -c "CREATE DATABASE ctxstore_fuzz"
psql -d ctxstore_fuzz >/dev/null <<'SQL'
CREATE EXTENSION ctxstore;
SELECT ctx.create_context('fuzz') AS c \gset
SELECT count(*) FROM ctx.append_many(:'c', '[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]');
SELECT ctx.remember('{fuzz}', 'a memory', ARRAY[1, 0, 0]::real[]);
SELECT ctx.put('{fuzz}', 'k', '{"v": 1}');
SQL
psql -d ctxstore_fuzz -tA -F '|' -c "
  SELECT p.proname, coalesce(array_to_string(p.proargtypes::regtype[]::text[], ','), '')
    FROM pg_proc p
   WHERE p.pronamespace = 'ctx'::regnamespace AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype
   ORDER BY 1, 2" > "$work/signatures.txt"
"$root/.venv/bin/python" "$root/tests/fuzz_sql.py" "$work/signatures.txt" "$per_function" "$seed" > "$work/fuzz.sql" \
  2>/dev/null || python3 "$root/tests/fuzz_sql.py" "$work/signatures.txt" "$per_function" "$seed" > "$work/fuzz.sql"
calls=$(grep -c '^DO ' "$work/fuzz.sql")
# a crash ends this session: psql fails, and the checks below say why
psql -d ctxstore_fuzz -f "$work/fuzz.sql" > "$work/fuzz.out" 2>&1 || { tail -n 5 "$work/fuzz.out" >&2; }
pid_after=$(sudo -u postgres head -n1 "$datadir/postmaster.pid")
[ "$pid_before" = "$pid_after" ] || fail "the postmaster restarted during the fuzz run"
if tail -n +"$log_lines" "$datadir/server.log" | grep -E "terminated by signal|server process .* was terminated|PANIC"; then
  fail "a backend crashed during the fuzz run"
fi
recorded=$(psql -d ctxstore_fuzz -tA -c "SELECT count(*) FROM fuzz_results")
[ "$recorded" -eq "$calls" ] || fail "only $recorded of $calls calls completed (the session died?)"
internal=$(psql -d ctxstore_fuzz -tA -c "SELECT count(*) FROM fuzz_results WHERE sqlstate = 'XX000'")
if [ "$internal" -ne 0 ]; then
  psql -d ctxstore_fuzz -c "SELECT fn, sqlstate, message, left(call, 200) FROM fuzz_results WHERE sqlstate = 'XX000' LIMIT 20" >&2
  fail "$internal calls ended with an internal error instead of a specific SQLSTATE"
fi
summary=$(psql -d ctxstore_fuzz -tA -c "SELECT count(DISTINCT fn) || ' functions, ' || count(*) FILTER (WHERE sqlstate IS NULL) || ' accepted, '
  || count(*) FILTER (WHERE sqlstate IS NOT NULL) || ' rejected with ' || count(DISTINCT sqlstate) || ' distinct SQLSTATEs' FROM fuzz_results")
echo "fuzz (sql): $calls calls, $summary; no crash, no internal error"
functions=$(psql -d ctxstore_fuzz -tA -c "SELECT count(DISTINCT fn) FROM fuzz_results")
[ "$functions" -gt 0 ] || fail "no function was fuzzed"
result "$functions" 0 0 "functions fuzzed, $calls calls"
