#!/usr/bin/env bash
# What leading every key with the tenant costs on the hot paths' statements (P1 window, P2
# append, P3 exact recall candidates), isolated from everything else ctxstore does: the same
# tables and statements twice, keyed without the tenant and with it leading, same data, pgbench.
#   benches/tenant_keys.sh HOST PORT [SECONDS] [ROUNDS]   (a server with pgvector; as postgres)
# Prints one line per statement and keying: median latency (ms) of ROUNDS interleaved runs.
set -euo pipefail
host=$1 port=$2 seconds=${3:-10} rounds=${4:-5}
bindir=$(dirname "$(command -v pgbench)")
psql=("$bindir/psql" -h "$host" -p "$port" -X -q -v ON_ERROR_STOP=1)
"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS tenant_keys" -c "CREATE DATABASE tenant_keys"
"${psql[@]}" -d tenant_keys <<'SQL'
CREATE EXTENSION vector;
-- 200 tenants × 5 contexts × 200 messages; 100 tenants × 1,000 memories of 384 dimensions (one namespace each)
CREATE FUNCTION vec(seed int) RETURNS vector LANGUAGE sql IMMUTABLE AS
  $$ SELECT array_agg(sin(seed * 7.31 + j * 1.17)::real ORDER BY j)::vector FROM generate_series(1, 384) j $$;
DO $$
DECLARE keyed text;
BEGIN
  FOREACH keyed IN ARRAY ARRAY['plain', 'tenant'] LOOP
    EXECUTE format('CREATE SCHEMA %I', keyed);
    EXECUTE format('CREATE TABLE %I.contexts (tenant text NOT NULL, id uuid NOT NULL, last_seq bigint NOT NULL, PRIMARY KEY (%s))',
                   keyed, CASE keyed WHEN 'plain' THEN 'id' ELSE 'tenant, id' END);
    EXECUTE format('CREATE TABLE %I.messages (tenant text NOT NULL, context_id uuid NOT NULL, seq bigint NOT NULL, role text NOT NULL,
                    content text NOT NULL, metadata jsonb NOT NULL DEFAULT ''{}'', created_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (%s))', keyed, CASE keyed WHEN 'plain' THEN 'context_id, seq' ELSE 'tenant, context_id, seq' END);
    EXECUTE format('CREATE TABLE %I.memories (tenant text NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), ns_key text NOT NULL,
                    content text NOT NULL, embedding vector(384) NOT NULL, PRIMARY KEY (%s))',
                   keyed, CASE keyed WHEN 'plain' THEN 'id' ELSE 'tenant, id' END);
    EXECUTE format('CREATE INDEX ON %I.memories (%s)', keyed, CASE keyed WHEN 'plain' THEN 'ns_key' ELSE 'tenant, ns_key' END);
  END LOOP;
END $$;
INSERT INTO plain.contexts SELECT 't' || t, md5(t || '-' || c)::uuid, 200 FROM generate_series(1, 200) t, generate_series(1, 5) c;
INSERT INTO plain.messages (tenant, context_id, seq, role, content)
  SELECT c.tenant, c.id, s, 'user', 'message ' || s || ' of moderate length for the benchmark' FROM plain.contexts c, generate_series(1, 200) s;
INSERT INTO plain.memories (tenant, ns_key, content, embedding)
  SELECT 't' || t, 'user/u3/t' || t, 'memory ' || m, vec(t * 1000 + m) FROM generate_series(1, 100) t, generate_series(1, 1000) m;
INSERT INTO tenant.contexts SELECT * FROM plain.contexts;
INSERT INTO tenant.messages SELECT * FROM plain.messages;
INSERT INTO tenant.memories SELECT * FROM plain.memories;
VACUUM ANALYZE;
SQL
ctx=$("${psql[@]}" -d tenant_keys -Atc "SELECT id FROM plain.contexts WHERE tenant = 't7' LIMIT 1")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for keyed in plain tenant; do
  # the same statements: each names the tenant (row-level security would add it too); only the
  # keys differ (namespaces and context ids are distinct across tenants either way)
  t="tenant = 't7' AND"
  cat > "$dir/$keyed-append.sql" <<SQL
WITH c AS (UPDATE $keyed.contexts SET last_seq = last_seq + 1 WHERE $t id = '$ctx' RETURNING tenant, last_seq)
INSERT INTO $keyed.messages (tenant, context_id, seq, role, content) SELECT c.tenant, '$ctx', c.last_seq, 'user', 'a message' FROM c;
SQL
  echo "SELECT seq, role, content, metadata, created_at FROM $keyed.messages WHERE $t context_id = '$ctx' ORDER BY seq DESC LIMIT 20;" > "$dir/$keyed-window.sql"
  echo "SELECT id FROM $keyed.memories WHERE $t ns_key = 'user/u3/t7' ORDER BY embedding <=> (SELECT vec(42)) LIMIT 10;" > "$dir/$keyed-recall.sql"
done
declare -A runs
for round in $(seq "$rounds"); do
  for s in append window recall; do
    for keyed in plain tenant; do
      lat=$("$bindir/pgbench" -h "$host" -p "$port" -n -T "$seconds" -M prepared -f "$dir/$keyed-$s.sql" tenant_keys 2>&1 \
            | sed -n 's/latency average = \(.*\) ms/\1/p')
      runs[$s-$keyed]+="$lat "
    done
  done
done
for s in window append recall; do
  for keyed in plain tenant; do
    median=$(tr ' ' '\n' <<<"${runs[$s-$keyed]}" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "$s $keyed median ${median} ms (runs: ${runs[$s-$keyed]% })"
  done
done
"${psql[@]}" -d postgres -c "DROP DATABASE tenant_keys"
