"""Test configuration shared by every suite: fixture plugins, one per sandbox part, and what a run leaves out.

Two kinds of test are left out of a run (deselected, and said so at the end) rather than skipped:
the 30-cluster chaos runs (``slow``) unless ``O2_E2E_SLOW=1`` (``make test-slow``), and the check that
regenerating the carried CAPI/BYOH facts from upstream changes nothing (``upstream``) where the
upstream CRD files are absent, as in a lone clone (CI has them beside the repository).
"""

from __future__ import annotations

import os

import pytest

from shared.capi_api.generate import default_upstream

pytest_plugins = [
    "tests.fixtures.nats",
    "tests.fixtures.kubeapi",
    "tests.fixtures.capi",
    "tests.fixtures.sandbox_hosts",
]


def _left_out() -> dict[str, str]:
    """Marker → why tests carrying it are not run here."""
    out: dict[str, str] = {}
    if os.environ.get("O2_E2E_SLOW") != "1":
        out["slow"] = "the 30-cluster chaos runs need O2_E2E_SLOW=1 (make test-slow)"
    upstream = default_upstream()
    if not upstream.is_dir():
        out["upstream"] = f"no upstream CRD files at {upstream} (set O2_CAPI_API_UPSTREAM)"
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    left_out = _left_out()
    dropped = [i for i in items if any(i.get_closest_marker(m) for m in left_out)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for marker, why in _left_out().items():
        terminalreporter.write_line(f"left out ({marker}): {why}")
