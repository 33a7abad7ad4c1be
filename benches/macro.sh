#!/usr/bin/env bash
# Macro benchmarks on a throwaway PG 18 cluster (release build): latency of the hot SQL paths
# against the plain-SQL baseline a client library would run, measured with pgbench in the same
# run. Prints a markdown table.   benches/macro.sh [seconds per workload, default 10]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
seconds=${1:-10}
datadir="$root/tmp/bench18"
port=${CTXSTORE_BENCH_PORT:-55518}
bindir=$("$PG18_CONFIG" --bindir)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)

"$root/scripts/install.sh" pg18 --release
rm -rf "$datadir"
trap '"$root/scripts/cluster.sh" stop pg18 "$datadir"' EXIT
"$root/scripts/cluster.sh" start pg18 "$datadir" "$port" "shared_preload_libraries=ctxstore-$version" \
  "shared_buffers=512MB" "max_wal_size=4GB" \
  "ctxstore.master_key=bench:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
psql() { sudo -u postgres "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$datadir" -p "$port" -U postgres -d postgres "$@"; }
work=$(mktemp -d); chmod 755 "$work"

echo "loading data..." >&2
psql -f "$root/benches/sql/load.sql" >/dev/null

# name | pgbench script; each runs $seconds on 1 client, reporting the mean latency
run() {
  local name=$1 sql=$2 clients=${3:-1}
  # CTXSTORE_BENCH_ONLY=text runs only the workloads whose name contains it
  if [ -n "${CTXSTORE_BENCH_ONLY:-}" ] && [[ $name != *"$CTXSTORE_BENCH_ONLY"* ]]; then return; fi
  echo "$sql" > "$work/q.sql"
  local out
  out=$(sudo -u postgres env PGOPTIONS="${PGOPTIONS:-}" "$bindir/pgbench" -n -h "$datadir" -p "$port" -U postgres -c "$clients" -j "$clients" \
        -T "$seconds" -f "$work/q.sql" postgres 2>&1)
  local lat tps
  lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
  printf '| %s | %s | %s | %s |\n' "$name" "$clients" "$lat" "$tps"
  LAST_TPS=$tps
}

echo "| workload | clients | mean latency (ms) | tps |"
echo "|---|---|---|---|"
for n in 100 1000 10000; do
  run "token_window(4000), thread of $n" "SELECT count(*) FROM ctx.token_window((SELECT id FROM ctx.contexts WHERE name = 'thread-$n'), 4000);"
  run "baseline: fetch whole thread of $n (client trims)" "SELECT count(*), sum(length(content)) FROM (SELECT content FROM bench_history WHERE session = $n ORDER BY id) t;"
  run "floor: indexed last 100 rows of $n" "SELECT count(*) FROM (SELECT content FROM bench_history WHERE session = $n ORDER BY id DESC LIMIT 100) t;"
done
run "token_window(4000), encrypted thread of 1000" \
  "SELECT count(*) FROM ctx.token_window((SELECT id FROM ctx.contexts WHERE name = 'encrypted-1000'), 4000);"
run "ctx.append, encrypted context" \
  "SELECT ctx.append((SELECT id FROM ctx.contexts WHERE name = 'append-encrypted'), 'user', 'The quick brown fox jumps over the lazy dog, again and again, for the benchmark.');"
# data-key cache hit ratio of one session appending to and reading 20 encrypted contexts
psql -tA \
  -c "CREATE TEMP TABLE cache_contexts AS SELECT ctx.create_context('cache-' || k, encrypted => true) AS c FROM generate_series(1, 20) k" \
  -c "SELECT count(ctx.append(c, 'user', 'hello ' || i)), sum((SELECT count(*) FROM ctx.window(c, 5))) FROM cache_contexts, generate_series(1, 50) i" \
  -c "SELECT format('data-key cache, 20 encrypted contexts x 50 appends + reads in one session: %s hits, %s misses (%s%% hits)',
                    hits, misses, round(100.0 * hits / nullif(hits + misses, 0), 1)) FROM ctx.key_cache_stats()" >&2
psql -c "SELECT ctx.set_audit('messages', false), ctx.set_audit('contexts', false)" >/dev/null
run "ctx.append, audit off (baseline for the audit's cost)" \
  "SELECT ctx.append((SELECT id FROM ctx.contexts WHERE name = 'append-target'), 'user', 'The quick brown fox jumps over the lazy dog, again and again, for the benchmark.');"
psql -c "SELECT ctx.set_audit('messages', true), ctx.set_audit('contexts', true)" >/dev/null
for c in 1 2; do
  run "ctx.append (tokenized, gap-free seq)" "SELECT ctx.append((SELECT id FROM ctx.contexts WHERE name = 'append-target'), 'user', 'The quick brown fox jumps over the lazy dog, again and again, for the benchmark.');" "$c"
  run "baseline: INSERT into a langchain-shaped table" "INSERT INTO bench_history (session, content) VALUES (0, 'The quick brown fox jumps over the lazy dog, again and again, for the benchmark.');" "$c"
done
# Metric collection's cost on ctx.append: on and off alternated (5 rounds each, to average
# out drift), same session settings otherwise.
if [ -z "${CTXSTORE_BENCH_ONLY:-}" ] || [[ "metrics" == *"$CTXSTORE_BENCH_ONLY"* ]]; then
  on=0 off=0
  rounds=${CTXSTORE_BENCH_ROUNDS:-5}
  for round in $(seq "$rounds"); do
    for m in on off; do
      PGOPTIONS="-c ctxstore.metrics=$m" run "ctx.append, metrics $m (round $round)" \
        "SELECT ctx.append((SELECT id FROM ctx.contexts WHERE name = 'append-target'), 'user', 'The quick brown fox jumps over the lazy dog, again and again, for the benchmark.');"
      if [ "$m" = on ]; then on=$(awk "BEGIN {print $on + $LAST_TPS}"); else off=$(awk "BEGIN {print $off + $LAST_TPS}"); fi
    done
  done
  awk "BEGIN {printf \"metrics cost on ctx.append throughput: %.2f %% (mean tps %.1f with metrics, %.1f without)\\n\", 100 * ($off - $on) / $off, $on / $rounds, $off / $rounds}" >&2
fi
run "token_window(4000) through read processors (drop_tool_messages, dedup, truncate 40), thread of 10000" \
  "SELECT count(*) FROM ctx.token_window((SELECT id FROM ctx.contexts WHERE name = 'thread-10000-processed'), 4000);"
run "ctx.append of a message with a card number and an API key (redacted)" \
  "SELECT ctx.append((SELECT id FROM ctx.contexts WHERE name = 'append-target'), 'user', 'Pay with 4111 1111 1111 1111 and use key sk-proj-abcdefghijklmnopqrstuvwxyz0123 please.');"
q="(SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 384))"
t10k="(SELECT id FROM ctx.contexts WHERE name = 'thread-10000')"
run "build_context(4000): 10k-message thread + 20k memories, one call" \
  "SELECT count(*) FROM ctx.build_context($t10k, 4000, $q, 'memory 77', '{\"memory_namespaces\": [[\"bench\"]]}');"
run "build_context baseline: the same pieces as 3 client calls (window, recall, working memory)" \
  "SELECT count(*) FROM ctx.token_window($t10k, 3000);
SELECT count(*) FROM ctx.recall('{bench}', $q, 'memory 77', k => 5);
SELECT ctx.working_memory($t10k);"
for sel in 100 10 1; do
  f=$([ "$sel" = 100 ] && echo '{}' || echo "{\"b$sel\": 0}")
  run "recall k=10, 20k×384d, $sel % match, exact path" "SET ctxstore.exact_recall_max_candidates = 100000000; SELECT count(*) FROM ctx.recall('{bench}', $q, k => 10, filter => '$f');"
  run "recall k=10, 20k×384d, $sel % match, HNSW path" "SET ctxstore.exact_recall_max_candidates = 0; SELECT count(*) FROM ctx.recall('{bench}', $q, k => 10, filter => '$f');"
  run "recall k=10, 20k×384d, $sel % match, auto" "SELECT count(*) FROM ctx.recall('{bench}', $q, k => 10, filter => '$f');"
done
