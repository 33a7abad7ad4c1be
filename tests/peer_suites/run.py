"""Runs the swapped test files and reports passed / failed / excluded per file.

    run.py WORK_DIR SDIST_DIR...

Exits non-zero when a test that is not excluded fails (or errors).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from suites import FILES

HERE = Path(__file__).resolve().parent


def main() -> int:
    work = Path(sys.argv[1])
    totals = {"passed": 0, "failed": 0, "skipped": 0, "excluded": 0, "total": 0}
    unexpected: list[str] = []
    for sdist in map(Path, sys.argv[2:]):
        tree = work / sdist.name
        subprocess.run([sys.executable, str(HERE / "swap.py"), str(sdist), str(tree)], check=True)
        for relative in FILES[sdist.name]:
            junit = work / (sdist.name + "-" + Path(relative).stem + ".xml")
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                 "-o", "asyncio_mode=auto",
                 "--rootdir", str(tree), "--junitxml", str(junit), "-W", "ignore::DeprecationWarning",
                 "-p", "exclude_plugin", relative],
                cwd=tree, env={**os.environ, "PYTHONPATH": f"{tree}:{HERE}"},
            )
            counts = {"passed": 0, "failed": 0, "skipped": 0, "excluded": 0}
            root = ET.parse(junit).getroot()
            for case in root.iter("testcase"):
                if case.find("failure") is not None or case.find("error") is not None:
                    counts["failed"] += 1
                    unexpected.append(f"{relative}::{case.get('name')}")
                elif case.find("skipped") is not None:
                    message = case.find("skipped").get("message", "")
                    counts["excluded" if "excluded on ctxstore" in message else "skipped"] += 1
                else:
                    counts["passed"] += 1
            total = sum(counts.values())
            for k in counts:
                totals[k] += counts[k]
            totals["total"] += total
            print(f"PEER {sdist.name} {relative}: {counts['passed']} passed, {counts['failed']} failed, "
                  f"{counts['skipped']} skipped, {counts['excluded']} excluded", flush=True)
    print(f"PEER TOTAL: {totals['passed']} passed, {totals['failed']} failed, "
          f"{totals['skipped']} skipped, {totals['excluded']} excluded (of {totals['total']})")
    for name in unexpected:
        print(f"  failed: {name}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
