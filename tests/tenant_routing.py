"""Which statements ctxstore ran could a cluster distributed by tenant route to one shard?

Reads the plans auto_explain logged (csvlog, JSON plans, nested statements) and checks every
scan of a tenant table (argv[2]: their names, comma-separated) for a tenant predicate Citus can
route on: `tenant = $n` (a parameter) or `tenant = '…'::text` (a constant), on that scan itself.
A comparison with ctx.current_tenant() or a subquery is not one, nor a join on another table's
tenant: Citus routes a lateral subquery joined that way nowhere ("cannot push down this
subquery", seen on a Citus 14 cluster), so every table reference names the tenant itself.

    tenant_routing.py LOG_DIR TABLES   prints each statement that fails, then a summary line

The workload's own statements touch no table (they call ctxstore's functions), so every scan
logged is ctxstore's. Statements that read across tenants by design are listed in ACROSS_TENANTS
with the reason, and not counted.
"""

from __future__ import annotations

import csv
import glob
import json
import re
import sys

# tenant = $n or tenant = 'x'::text (a custom plan's parameter value, maybe with a collation);
# the column may show as (tenant)::text
ROUTABLE = re.compile(
    r"""\(?\b(?:\w+\.)?tenant\)?(?:::text)?\s*=\s*"""
    r"""(?:\$\d+\b|'(?:[^']|'')*'::text(?:\s+COLLATE\s+"?\w+"?)?)"""
)
INITPLAN_PARAM = re.compile(r"returns (\$\d+(?:,\s*\$\d+)*)")
# Statements that read every tenant's rows on purpose (a cluster runs them on every node).
ACROSS_TENANTS = {
    # ctx.seal_audit / ctx.verify_audit(): which tenants have audit rows to seal or verify
    "SELECT DISTINCT a.tenant FROM ctx.audit_log a WHERE a.chain_seq IS NULL": "seal_audit",
    "SELECT c.tenant FROM ctx.audit_chain c UNION SELECT DISTINCT a.tenant FROM ctx.audit_log a": "verify_audit",
}
CONDITIONS = ("Index Cond", "Recheck Cond", "Filter", "Join Filter", "Hash Cond", "Merge Cond", "TID Cond")


def plans(log_dir: str):
    csv.field_size_limit(1 << 30)
    for path in sorted(glob.glob(f"{log_dir}/*.csv")):
        with open(path, newline="") as f:
            for row in csv.reader(f):
                if len(row) < 14:
                    continue
                message = row[13]
                if "plan:\n" not in message:
                    continue
                try:
                    yield json.loads(message.split("plan:\n", 1)[1])
                except json.JSONDecodeError:
                    continue


def initplan_params(node: dict) -> set[str]:
    """PG 15 names an InitPlan's output $0, $1… like a parameter: those are no parameters."""
    found: set[str] = set()
    for child in node.get("Plans", []):
        m = INITPLAN_PARAM.search(child.get("Subplan Name", ""))
        if m:
            found.update(p.strip() for p in m.group(1).split(","))
        found |= initplan_params(child)
    return found


def scans(node: dict, parent_conditions: str = ""):
    """(relation, the conditions that bound its rows) of every scan under node."""
    own = " ".join(node.get(k, "") for k in CONDITIONS)
    relation = node.get("Relation Name")
    children = node.get("Plans", [])
    if relation and node.get("Node Type") != "ModifyTable":
        # a bitmap heap scan's index conditions are its children's
        below = " ".join(" ".join(c.get(k, "") for k in CONDITIONS) for c in children)
        yield relation, f"{own} {below} {parent_conditions}"
    for child in children:
        # a nested loop's parameterized inner scan: its conditions name the outer row
        yield from scans(child, own if node.get("Node Type") == "Nested Loop" else "")


def routable(conditions: str, initplan: set[str]) -> bool:
    for m in ROUTABLE.finditer(conditions):
        param = re.search(r"\$\d+", m.group(0))
        if param and param.group(0) in initplan:
            continue
        return True
    return False


def main() -> None:
    log_dir, tables = sys.argv[1], set(sys.argv[2].split(","))
    checked = 0
    statements: set[str] = set()
    failing: dict[str, set[str]] = {}
    for entry in plans(log_dir):
        text = entry.get("Query Text", "")
        if any(" ".join(text.split()).startswith(prefix) for prefix in ACROSS_TENANTS):
            continue
        plan = entry.get("Plan", {})
        initplan = initplan_params(plan)
        for relation, conditions in scans(plan):
            if relation not in tables:
                continue
            checked += 1
            statements.add(" ".join(text.split()))
            if not routable(conditions, initplan):
                failing.setdefault(" ".join(text.split())[:200], set()).add(relation)
    for text, relations in sorted(failing.items()):
        print(f"not routable ({', '.join(sorted(relations))}): {text}")
    print(f"routing: {len(statements)} statements ({checked} scans of tenant tables) checked, "
          f"{len(failing)} not routable")


if __name__ == "__main__":
    main()
