#!/usr/bin/env bash
# Every statement ctxstore issues names its tenant as a parameter:   tenant_routing.sh pg15
# A cluster distributed by tenant (Citus) routes a statement to one node only when each table it
# reads carries `tenant = $n` (or a constant); a comparison with ctx.current_tenant() goes to
# every node. The replica tier's workload (tests/replica: plain and encrypted contexts, edits,
# forks, compaction, memories, state, threads, checkpoints, the cache, a tenant-bound role, and
# every read function) runs with auto_explain logging every nested plan; tests/tenant_routing.py
# checks every scan of a table distributed by tenant (from the catalog: a NOT NULL tenant
# leading the primary key). PG 15 only: the PG 18 build here ships without auto_explain.
source "$(dirname "$0")/lib.sh"
server=$1
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
[ -f "$(bindir_of "$server")/../lib/postgresql/auto_explain.so" ] || [ -f "$("$(pg_config_for "$server")" --pkglibdir)/auto_explain.so" ] \
  || fail "auto_explain is not installed for $server"

throwaway_cluster "$server" routing $((57700 + ${server#pg})) \
  "shared_preload_libraries=ctxstore-$version,auto_explain" \
  "auto_explain.log_min_duration=0" "auto_explain.log_nested_statements=on" "auto_explain.log_format=json" \
  "logging_collector=on" "log_destination=csvlog" "log_directory=log" \
  "ctxstore.master_key=fixture:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
psql -d postgres -f "$root/tests/replica/populate.sql" >/dev/null
psql -d postgres -v routing=1 -f "$root/tests/replica/reads.sql" >/dev/null
# (the tables a cluster would distribute by tenant; the others are its reference tables)
tables=$(psql -d postgres -tAc "
  SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c
   WHERE c.relnamespace = 'ctx'::regnamespace AND c.relkind = 'r'
     AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant' AND a.attnotnull)
     AND EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute k ON k.attrelid = c.oid AND k.attnum = x.indkey[0]
                  WHERE x.indrelid = c.oid AND x.indisprimary AND k.attname = 'tenant')")
psql -d postgres -c "SELECT pg_rotate_logfile()" >/dev/null
sleep 1
"$root/scripts/cluster.sh" stop "$server" "$datadir"   # (flushes the log)
python3 "$root/tests/tenant_routing.py" "$datadir/log" "$tables" | tee "$datadir/routing.txt"
summary=$(tail -n 1 "$datadir/routing.txt")
checked=$(sed -E 's/^routing: ([0-9]+) statements.*/\1/' <<<"$summary")
failing=$(sed -E 's/.*checked, ([0-9]+) not routable.*/\1/' <<<"$summary")
[ "$checked" -ge 50 ] || fail "only $checked statements over tenant tables were logged: the workload did not run"
[ "$failing" = 0 ] || fail "$failing statements ctxstore issues read a tenant table without a tenant parameter"
result "$checked" 0 0 "statements over tenant tables"
