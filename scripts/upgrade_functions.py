"""Prints the C-language functions of a generated schema (cargo pgrx schema, or the installed
ctxstore--X.sql) as CREATE OR REPLACE statements, for the function section of a hand-written
upgrade script: each release has its own library (ctxstore-X.so), so an upgrade re-points every
function at the new one. Signature changes (return type, argument names or defaults) still need
a DROP FUNCTION first, written by hand above this section.
    upgrade_functions.py ctxstore--0.2.0.sql > section.sql"""
import re
import sys

text = open(sys.argv[1]).read()
# pgrx writes each function as "CREATE  FUNCTION ... AS '<library>', '<symbol>';"
pattern = re.compile(
    r"CREATE\s+FUNCTION\s(?:(?!CREATE\s).)*?LANGUAGE c(?: /\* Rust \*/)?\s*AS '[^']+', '[^']+';", re.S
)
functions = pattern.findall(text)
if not functions:
    sys.exit("no C functions found in " + sys.argv[1])
print("-- Every C function, re-pointed at this version's library (scripts/upgrade_functions.py).")
for f in functions:
    # comments pgrx adds after arguments name Rust types: keep the SQL only
    f = re.sub(r"\s*/\*.*?\*/", "", f)
    if "ctx.embedding[]" in f:
        # (the function section runs where ctx.embedding may be a shell type, which has no
        # array type yet: such a function is written by hand after CREATE TYPE ctx.embedding)
        name = re.search(r'FUNCTION\s+(\S+?)\(', f).group(1)
        print(f"upgrade_functions.py: {name} takes ctx.embedding[]: write it after CREATE TYPE ctx.embedding",
              file=sys.stderr)
        continue
    print(re.sub(r"^CREATE\s+FUNCTION", "CREATE OR REPLACE FUNCTION", f))
    print()
# CREATE OR REPLACE resets attributes set afterwards (SECURITY DEFINER, SET search_path):
# repeat the schema's ALTER FUNCTION statements.
alters = re.findall(r"^ALTER FUNCTION [^;]+;", text, re.M)
if alters:
    print("-- Attributes the schema sets after creating functions (CREATE OR REPLACE reset them).")
    print("\n".join(alters))
