"""Every adapter example in examples/ runs against the test database."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from conftest import dsn

EXAMPLES = sorted((pathlib.Path(__file__).parents[3] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: pathlib.Path) -> None:
    env = {**os.environ, "CTXSTORE_DSN": dsn() + " options='-c ctxstore.tenant=examples'"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
