"""Every adapter example in examples/ runs against the test database and prints what
examples/expected/<name>.out says it prints (after normalising what legitimately varies)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import uuid

import pytest
from conftest import dsn

EXAMPLES_DIR = pathlib.Path(__file__).parents[3] / "examples"
EXPECTED_DIR = EXAMPLES_DIR / "expected"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d(?::?\d\d)?)?")
_LONG_DECIMAL = re.compile(r"-?\d+\.\d{4,}")


def normalise(text: str) -> str:
    """Output with uuids and timestamps replaced by placeholders and decimals cut to 3 places."""
    text = _UUID.sub("<uuid>", text)
    text = _TIMESTAMP.sub("<timestamp>", text)
    text = _LONG_DECIMAL.sub(lambda m: f"{float(m.group()):.3f}", text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"


def expected_file(script: pathlib.Path) -> pathlib.Path:
    return EXPECTED_DIR / f"{script.stem}.out"


def test_every_expected_output_has_its_example() -> None:
    assert EXAMPLES
    # (the .mjs examples are Mastra's, run by clients/typescript/test/examples.test.ts)
    every = EXAMPLES + sorted(EXAMPLES_DIR.glob("*.mjs"))
    orphans = {p.name for p in EXPECTED_DIR.glob("*.out")} - {expected_file(s).name for s in every}
    assert not orphans, f"expected outputs without an example: {sorted(orphans)}"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_prints_its_expected_output(script: pathlib.Path) -> None:
    expected = expected_file(script)
    assert expected.is_file(), f"{expected} is missing: write the example's normalised output there"
    # a tenant of its own: nothing left by an earlier run can show up in the output
    options = f" options='-c ctxstore.tenant=examples-{uuid.uuid4()}'"
    env = {**os.environ, "CTXSTORE_DSN": dsn() + options}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert normalise(done.stdout) == expected.read_text(encoding="utf-8"), done.stderr


def test_normalise_keeps_what_matters() -> None:
    # placeholders stand only for what varies between runs; a different result still differs
    assert normalise("[('users', '7B15F97E-8718-4408-af7a-1cc8eac743d3')]  \n") == "[('users', '<uuid>')]\n"
    assert normalise("at 2025-01-02T03:04:05.678+00:00\n") == "at <timestamp>\n"
    assert normalise("0.71428571 m1\n-0.0701 kb-3") == "0.714 m1\n-0.070 kb-3\n"
    assert normalise("0.714 m1") != normalise("0.715 m1")
    assert normalise("6 checkpoints") != normalise("5 checkpoints")
