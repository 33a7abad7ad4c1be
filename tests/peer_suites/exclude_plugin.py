"""pytest plugin: the tests listed in suites.EXCLUDED are skipped with their reason, so the
junit report counts them (as skipped) beside the ones that ran."""

from __future__ import annotations

import pytest

from suites import EXCLUDED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = EXCLUDED.get(item.nodeid) or EXCLUDED.get(item.nodeid.split("[", 1)[0])
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"excluded on ctxstore: {reason}"))
