"""shared.kube_watch's raw Watch: the state kubernetes' Watch keeps, without the ApiClient it would build."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes.aio import watch as kwatch

from shared import kube_watch


def test_raw_watch_sets_what_the_library_watch_sets() -> None:
    real = kwatch.Watch()
    raw = kube_watch._RawWatch()
    assert set(vars(raw)) == set(vars(real))
    assert {k: v for k, v in vars(raw).items() if k != "_api_client"} == {
        k: v for k, v in vars(real).items() if k != "_api_client"
    }
    asyncio.run(real.close())


def test_raw_watch_builds_no_api_client_and_refuses_typed_events() -> None:
    raw = kube_watch._RawWatch()
    assert isinstance(raw._api_client, kube_watch._NoApiClient)
    with pytest.raises(TypeError):
        raw._api_client.deserialize({}, "V1Pod")
    asyncio.run(raw.close())
