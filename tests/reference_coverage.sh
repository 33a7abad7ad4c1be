#!/usr/bin/env bash
# Checks that every SQL object of the extension ctxstore has a heading in the reference docs.
#
#   tests/reference_coverage.sh PSQL [PSQL_ARGS...]
#
# PSQL is the psql binary; the remaining arguments are passed to it and must connect to a
# database where CREATE EXTENSION ctxstore is already done, e.g.
#
#   tests/reference_coverage.sh /path/to/bin/psql -h SOCKDIR -p PORT -U postgres -d DB
#
# The objects come from the catalog (pg_depend entries of type 'e' on the extension), never from
# a hand-kept list: functions and procedures (pg_proc), types (pg_type, without the implicit row
# types of tables and views and without array types), views and materialized views, and tables
# (plain and partitioned). Each must have a heading `### <schema>.<name>` — the exact name, which
# may be followed by a space and text such as ` (view)` — in some docs/reference/*.md file
# (overloads share one heading).
#
# Prints `missing reference entry: <schema>.<name> (<kind>)` for each object without one, then
# `reference coverage: N objects, M missing`. Exits 1 when an object is missing, or when the
# catalog lists no object at all (so the check can never pass vacuously); 0 otherwise.
set -euo pipefail

if [ "$#" -lt 1 ]; then
  echo "usage: $0 PSQL [PSQL_ARGS...]   (psql and its connection arguments)" >&2
  exit 2
fi

refdir="$(cd "$(dirname "$0")/../docs/reference" && pwd)"
shopt -s nullglob
docs=("$refdir"/*.md)
shopt -u nullglob
if [ "${#docs[@]}" -eq 0 ]; then
  echo "no reference files in $refdir" >&2
  exit 1
fi

# kind|schema|name, one line per object (overloads of a function collapse into one line)
objects=$("$@" -X -A -t -q -v ON_ERROR_STOP=1 -F '|' <<'SQL'
WITH ext AS (
    SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'ctxstore'
), members AS (
    SELECT d.classid, d.objid
      FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = ext.oid AND d.deptype = 'e'
)
SELECT DISTINCT kind, schema, name FROM (
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                          WHEN 'w' THEN 'window function' ELSE 'function' END AS kind,
           n.nspname AS schema, p.proname AS name
      FROM members m
      JOIN pg_catalog.pg_proc p ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = m.objid
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    UNION ALL
    SELECT CASE t.typtype WHEN 'e' THEN 'enum type' WHEN 'c' THEN 'composite type' WHEN 'd' THEN 'domain'
                          WHEN 'r' THEN 'range type' WHEN 'm' THEN 'multirange type' ELSE 'base type' END,
           n.nspname, t.typname
      FROM members m
      JOIN pg_catalog.pg_type t ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = m.objid
      JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
      LEFT JOIN pg_catalog.pg_class r ON r.oid = t.typrelid
     -- not the row type of a table, view, sequence ... (a standalone composite type has relkind 'c')
     WHERE (t.typrelid = 0 OR r.relkind = 'c')
     -- not an array type
       AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END,
           n.nspname, c.relname
      FROM members m
      JOIN pg_catalog.pg_class c ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = m.objid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm')
) o
ORDER BY schema, name, kind
SQL
)

# every `### schema.name` heading of the reference (the name ends at a space or the line's end)
headings=$({ grep -h -E '^### [A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*( .*)?$' "${docs[@]}" || true; } \
             | sed -E 's/^### ([^ ]+).*$/\1/' | sort -u)

total=0
missing=0
while IFS='|' read -r kind schema name; do
  [ -n "$kind" ] || continue
  total=$((total + 1))
  if ! grep -qxF -- "$schema.$name" <<<"$headings"; then
    echo "missing reference entry: $schema.$name ($kind)"
    missing=$((missing + 1))
  fi
done <<<"$objects"

echo "reference coverage: $total objects, $missing missing"
if [ "$total" -eq 0 ]; then
  echo "the catalog lists no object of the extension ctxstore: is it installed in this database?" >&2
  exit 1
fi
if [ "$missing" -gt 0 ]; then
  exit 1
fi
