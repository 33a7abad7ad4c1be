#!/usr/bin/env bash
# Server-wide metrics, the background worker's sweeps and its OTLP export, on a cluster that
# preloads ctxstore:   observability.sh pg15|pg18   (after scripts/install.sh)
# A loopback OTLP receiver decodes every export with the official protobuf classes; the
# Prometheus text is parsed with prometheus_client's parser; the receiver is stopped mid-run to
# show that backends never wait on the exporter and that export resumes.
source "$(dirname "$0")/lib.sh"
server=$1
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
python="$VENV/bin/python"
scratch_dir
receiver_pid=
at_exit '[ -z "$receiver_pid" ] || kill "$receiver_pid" 2>/dev/null'
fail() { echo "FAILED: $*" >&2; echo "---- server log" >&2; tail -n 30 "${datadir:-/nonexistent}/server.log" >&2 2>/dev/null; exit 1; }

start_receiver() {  # [port]
  rm -f "$work/port"
  "$python" "$root/tests/otlp_receiver.py" "$work/port" "$work/exports.jsonl" "${1:-0}" &
  receiver_pid=$!
  for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || fail "the OTLP receiver did not start"
}
start_receiver
rport=$(cat "$work/port")

throwaway_cluster "$server" observability $((57000 + ${server#pg})) \
  "shared_preload_libraries=ctxstore-$version" \
  "ctxstore.sweep_interval=1" "ctxstore.otlp_endpoint=http://127.0.0.1:$rport" \
  "ctxstore.otlp_interval=1" "ctxstore.slow_call_ms=1"
# (the worker sweeps ctxstore.database, by default postgres)
psql -d postgres -c "CREATE EXTENSION ctxstore"

# A scripted workload in one session; every count below is exact (the cluster is new).
trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=00f067aa0ba902b7
psql -d postgres >/dev/null <<SQL
SET ctxstore.traceparent = '00-$trace-$parent-01';
SELECT ctx.create_context('metrics') AS c \gset
SELECT ctx.append(:'c', 'user', 'message ' || i) FROM generate_series(1, 3) i;
-- 500 messages in one call: slower than ctxstore.slow_call_ms, so exported as a span
SELECT count(*) FROM ctx.append_many(:'c', (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', 'a longer message, number ' || i)) FROM generate_series(1, 500) i));
SELECT count(*) FROM ctx.window(:'c', 10);
SELECT count(*) FROM ctx.token_window(:'c', 50);
SELECT ctx.remember('{obs}', 'the user likes tea') IS NOT NULL;
SELECT ctx.remember('{obs}', 'the user likes tea', dedup_threshold => 0.9) IS NOT NULL;
SELECT count(*) FROM ctx.recall('{obs}', query_text => 'tea');
SELECT ctx.put('{obs}', 'k', '{"a": 1}');
SELECT ctx.patch('{obs}', 'k', '{"b": 2}');
DO \$\$ BEGIN PERFORM ctx.put('{obs}', 'k', '{}', expected_version => 1);
EXCEPTION WHEN serialization_failure THEN NULL; END \$\$;
DO \$\$ BEGIN PERFORM ctx.append(NULL, 'user', 'x');
EXCEPTION WHEN null_value_not_allowed THEN NULL; END \$\$;
-- retention, applied by the background worker (ctxstore.sweep_interval = 1s)
SELECT ctx.create_context('kept short') AS r \gset
SELECT count(*) FROM ctx.append_many(:'r', (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', 'm' || i)) FROM generate_series(1, 10) i));
SELECT ctx.set_retention(:'r', max_messages => 2);
SQL

# The worker sweeps the 8 expired messages within a few seconds.
for _ in $(seq 60); do
  stored=$(psql -d postgres -tA -c "SELECT count(*) FROM ctx.messages m JOIN ctx.contexts c ON c.id = m.context_id WHERE c.name = 'kept short'")
  [ "$stored" = 2 ] && break
  sleep 0.25
done
[ "$stored" = 2 ] || fail "the background worker did not sweep expired messages ($stored stored, expected 2)"
echo "observability ($server): the background sweep removed the 8 expired messages"

# From another session: the counters are server-wide.
psql -d postgres -tA -c "SELECT ctx.metrics_prometheus()" > "$work/metrics.txt"
"$python" "$root/tests/observability_check.py" prometheus "$work/metrics.txt" \
  ctxstore_messages_appended_total=513 \
  ctxstore_call_duration_seconds_count{call:append}=5 \
  ctxstore_windows_total{kind:last_n}=1 ctxstore_windows_total{kind:tokens}=1 \
  ctxstore_memories_total{event:written}=1 ctxstore_memories_total{event:deduplicated}=1 \
  ctxstore_recalls_total{path:text}=1 \
  ctxstore_state_total{event:put}=1 ctxstore_state_total{event:patch}=1 ctxstore_state_total{event:conflict}=1 \
  ctxstore_errors_total{class:22}=1 ctxstore_errors_total{class:40}=1 \
  ctxstore_messages_retention_total{event:expired}=8 ctxstore_metrics_shared=1 \
  || fail "Prometheus exposition"
view=$(psql -d postgres -tA -c "SELECT value FROM ctx.metrics WHERE name = 'ctxstore_messages_appended_total'")
[ "$view" = 513 ] || fail "ctx.metrics says $view messages appended, expected 513"

# The receiver got the same values and the slow call's span, child of the client's span.
for _ in $(seq 40); do
  if "$python" "$root/tests/observability_check.py" otlp "$work/exports.jsonl" "$trace" "$parent" \
       ctxstore_messages_appended=513 ctxstore_messages_retention{event:expired}=8 \
       ctxstore_call_duration_seconds{call:append}=5 >"$work/otlp.out" 2>&1; then break; fi
  sleep 0.25
done
cat "$work/otlp.out"
grep -q '^otlp:' "$work/otlp.out" || fail "OTLP export"

# Receiver outage: a black hole on the receiver's port accepts each connection and never
# answers, so an export blocks for its whole timeout (2 s, src/api/worker.rs). As soon as an
# export is blocked, 200 slow-call appends (each records a span for the exporter) run: they
# must finish within 1 s, while a backend that waited on the blocked export even once would
# wait almost 2 s. (A liveness bound with a wide margin, not a speed target: they take about
# 0.1 s.) The worker logs the failure and keeps going.
kill "$receiver_pid"; wait "$receiver_pid" 2>/dev/null || true; receiver_pid=
"$python" -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128)
open(sys.argv[2], "w").write("listening\n")
held = []
while True:
    conn, _ = s.accept()
    held.append(conn)
    with open(sys.argv[2], "a") as f:
        f.write("accepted\n")' "$rport" "$work/blackhole" &
receiver_pid=$!
for _ in $(seq 50); do [ -s "$work/blackhole" ] && break; sleep 0.1; done
[ -s "$work/blackhole" ] || fail "the black-hole receiver did not start"
: > "$work/exports.jsonl"
for _ in $(seq 100); do grep -q accepted "$work/blackhole" && break; sleep 0.02; done
grep -q accepted "$work/blackhole" || fail "the worker never connected to the black-hole receiver"
start=$(date +%s%N)
psql -d postgres -c "SELECT ctx.append(c.id, 'user', 'during the outage') FROM ctx.contexts c, generate_series(1, 200) WHERE c.name = 'metrics'" >/dev/null
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$elapsed_ms" -lt 1000 ] || fail "200 appends during a blocked export took ${elapsed_ms} ms: a backend waited on the exporter"
sleep 3
grep -q "OTLP export to http://127.0.0.1:$rport failed" "$datadir/server.log" || fail "the worker did not report the outage"
workers=$(psql -d postgres -tA -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ctxstore maintenance'")
[ "$workers" = 1 ] || fail "the background worker is gone after the outage"
kill "$receiver_pid"; wait "$receiver_pid" 2>/dev/null || true; receiver_pid=
start_receiver "$rport"
for _ in $(seq 40); do
  grep -q '"/v1/metrics"' "$work/exports.jsonl" 2>/dev/null && break
  sleep 0.25
done
grep -q '"/v1/metrics"' "$work/exports.jsonl" || fail "export did not resume after the receiver came back"
echo "observability ($server): 200 appends during a receiver outage took ${elapsed_ms} ms; export resumed afterwards"

# Resetting is for administrators; it zeroes the server-wide counters.
psql -d postgres -c "CREATE ROLE obs_reader LOGIN" -c "GRANT USAGE ON SCHEMA ctx TO obs_reader"
if psql -d postgres -U obs_reader -c "SELECT ctx.reset_metrics()" 2>"$work/reset.err"; then
  fail "a role without privileges reset the metrics"
fi
grep -q "permission denied" "$work/reset.err" || fail "unexpected error: $(cat "$work/reset.err")"
psql -d postgres -c "SELECT ctx.reset_metrics()" >/dev/null
after=$(psql -d postgres -tA -c "SELECT value FROM ctx.metrics WHERE name = 'ctxstore_messages_appended_total'")
[ "$after" = 0 ] || fail "after ctx.reset_metrics() appended is $after"
echo "observability ($server): reset_metrics is admin-only and zeroes the counters"
result 1 0 0 "observability run: metrics, worker sweeps, OTLP export"
