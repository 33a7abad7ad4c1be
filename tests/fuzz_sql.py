"""Generates the SQL-level fuzz run: every ctx.* function called with generated bad inputs
(NULLs, empty and huge values, NUL-like and control characters, NaN/Infinity, wrong vector
dimensions, deep and odd JSON, out-of-range numbers), each call in its own block that records
the SQLSTATE it ended with.    fuzz_sql.py SIGNATURES_FILE CASES_PER_FUNCTION SEED > fuzz.sql
SIGNATURES_FILE: lines "name|argtype,argtype,..." (from pg_proc)."""
import random
import sys

BAD = {
    "uuid": ["NULL", "'00000000-0000-0000-0000-000000000000'", "gen_random_uuid()",
             "(SELECT id FROM ctx.contexts ORDER BY id LIMIT 1)"],
    "text": ["NULL", "''", "repeat('x', 2000000)", "E'tab\\tnew\\nline\\r'", "'ß∂ƒ©😀'", "repeat('{', 10000)",
             "chr(1) || chr(127)", "'%s%n%x'", "''' OR 1=1 --'", "'user'", "'system'", "'o200k_base'",
             "repeat('é', 300000)", "'   '"],
    "text[]": ["NULL", "'{}'", "'{\"\"}'", "ARRAY[NULL]::text[]", "array_fill('x'::text, ARRAY[1000])",
               "ARRAY[repeat('a', 100000)]", "'{fuzz}'", "'{fuzz,\"a b\",\"\\\\\"}'", "ARRAY[chr(1)]"],
    "jsonb": ["NULL", "'{}'", "'[]'", "'null'", "'\"str\"'", "'123'", "'1e400'::text::jsonb",
              "(repeat('[', 3000) || repeat(']', 3000))::jsonb",
              "'{\"role\": null, \"content\": 1}'", "'[{\"role\": \"user\"}]'",
              "'[{\"role\": \"user\", \"content\": \"x\", \"metadata\": []}]'",
              "(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 5000) i)",
              "'{\"$and\": [{\"$or\": []}]}'", "'{\"a\": {\"$in\": 5}}'", "'{\"truncate\": -1}'",
              "'{\"type\": \"object\", \"properties\": 5}'"],
    "integer": ["NULL", "0", "-1", "2147483647", "-2147483648", "1"],
    "bigint": ["NULL", "0", "-1", "9223372036854775807", "-9223372036854775808", "1"],
    "real": ["NULL", "'NaN'::real", "'Infinity'::real", "'-Infinity'::real", "-1", "3.4e38", "0"],
    "double precision": ["NULL", "'NaN'", "'Infinity'", "-1e308", "0"],
    "real[]": ["NULL", "'{}'", "'{NaN}'", "'{Infinity,-Infinity}'", "ARRAY[NULL]::real[]",
               "array_fill(1::real, ARRAY[100000])", "'{1,2}'", "'{1,2,3}'", "'{0,0,0}'",
               "array_fill(0::real, ARRAY[2, 2])"],
    "interval": ["NULL", "'0'", "'-1 day'", "'1000000 years'", "'1 microsecond'", "'178000000 years'"],
    "boolean": ["NULL", "true", "false"],
    "timestamp with time zone": ["NULL", "'infinity'", "'-infinity'", "'1900-01-01'", "now()"],
    "regprocedure": ["NULL", "'pg_catalog.now()'::regprocedure", "'pg_catalog.lower(text)'::regprocedure"],
    "regrole": ["NULL", "'postgres'::regrole", "'pg_monitor'::regrole"],
    "bytea": ["NULL", "''::bytea", "'\\x00'::bytea", "'\\xffffffff00'::bytea", "decode(repeat('ab', 10000), 'hex')"],
}


def value(argtype, rng):
    v = rng.choice(BAD.get(argtype, ["NULL"]))
    # typed, so that overloaded functions resolve
    return f"NULL::{argtype}" if v == "NULL" else f"({v})::{argtype}"


def main():
    signatures = [line.rstrip("\n").split("|", 1) for line in open(sys.argv[1]) if line.strip()]
    per_function = int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]))
    print("SET client_min_messages = warning;")
    print("CREATE TABLE IF NOT EXISTS fuzz_results (n int, fn text, call text, sqlstate text, message text);")
    n = 0
    for name, argtypes in signatures:
        types = [t for t in argtypes.split(",") if t]
        cases = [[f"NULL::{t}" for t in types]] + [[value(t, rng) for t in types] for _ in range(per_function)]
        for args in cases:
            n += 1
            call = f"ctx.{name}({', '.join(args)})"
            quoted = call[:300].replace("'", "''")
            print(f"DO $fuzz$ BEGIN PERFORM * FROM {call}; INSERT INTO fuzz_results VALUES ({n}, '{name}', '{quoted}', NULL, NULL);"
                  f" EXCEPTION WHEN OTHERS THEN INSERT INTO fuzz_results VALUES ({n}, '{name}', '{quoted}', SQLSTATE, left(SQLERRM, 200)); END $fuzz$;")
    print(f"-- {n} calls")


main()
