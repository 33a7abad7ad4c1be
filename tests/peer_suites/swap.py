"""Copies the peers' published test files and swaps only the fixtures that build the backend.

    swap.py SDIST_DIR OUT_DIR

Each swapped definition (a top-level function, a method of a test class as Class.method, or a
name the file imports from the peer's package as import:Name; listed in suites.SWAPS) is
replaced, at the same place in the file, by an import of the same name from
``backends.<module>`` (Class_method for a method); everything else is left as published. Prints the swaps made
and fails when a named definition is missing (a new peer release moved it).
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

from suites import SWAPS


def definitions(tree: ast.Module) -> dict[str, ast.AST]:
    """Top-level functions, and methods as Class.method."""
    found: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{item.name}"] = item
    return found


def imports(tree: ast.Module) -> dict[str, ast.ImportFrom]:
    """Top-level ``from X import Name`` statements, by the name they bind."""
    return {
        alias.asname or alias.name: node
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def swap(path: Path, module: str, names: list[str]) -> None:
    source = path.read_text()
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    found: dict[str, ast.AST] = {**definitions(tree)}
    # "import:Name": the name a test file imports from the peer's package (its backend class)
    for name, node in imports(tree).items():
        found.setdefault(f"import:{name}", node)
    missing = [n for n in names if n not in found]
    if missing:
        sys.exit(f"{path}: no definition named {', '.join(missing)} (did the peer's release change?)")
    # replace from the bottom so earlier line numbers stay valid
    for name in sorted(names, key=lambda n: found[n].lineno, reverse=True):
        node = found[name]
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        short = name.rsplit(".", 1)[-1].removeprefix("import:")
        # a test class's fixture comes from Class_method in the backends module
        source_name = name.replace(".", "_") if "." in name else short
        alias = f" as {short}" if source_name != short else ""
        swapped = [f"{indent}from backends.{module} import {source_name}{alias}  # ctxstore: backend fixture swapped\n"]
        if isinstance(node, ast.ImportFrom):  # keep the statement's other names
            rest = [a for a in node.names if (a.asname or a.name) != short]
            if rest:
                kept = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in rest)
                swapped.insert(0, f"{indent}from {'.' * node.level}{node.module or ''} import {kept}\n")
        lines[first : node.end_lineno] = swapped
    path.write_text("".join(lines))
    print(f"  {path.name}: swapped {', '.join(names)}")


def main() -> None:
    sdist, out = Path(sys.argv[1]), Path(sys.argv[2])
    name = sdist.name
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(sdist / "tests", out / "tests")
    for relative, (module, names) in SWAPS.get(name, {}).items():
        swap(out / relative, module, names)


if __name__ == "__main__":
    main()
