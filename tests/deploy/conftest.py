"""Fixtures of the deployment suite."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from kubernetes_validate import utils as kv_utils


@pytest.fixture(scope="session", autouse=True)
def _cached_kubernetes_schemas() -> Iterator[None]:
    # kubernetes-validate re-reads its JSON schema files (MBs) on every call; they never change in a run.
    original = kv_utils.schema_contents
    kv_utils.schema_contents = functools.cache(original)
    try:
        yield
    finally:
        kv_utils.schema_contents = original
