"""Where CNI manifests come from: pinned URL + sha256, downloaded once into the cache, overrides, failures."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from services.capi_renderer.cni_source import CALICO_URL, CniSources
from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.settings import CapiRendererSettings
from shared.errors import InputError, PermanentError, TemporaryError

BODY = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cni\n"
DIGEST = hashlib.sha256(BODY).hexdigest()


@dataclass
class Mirror:
    """A local HTTP server standing for the release host (or a mirror): counts requests per path."""

    url: str
    hits: dict[str, int] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def mirror() -> AsyncIterator[Mirror]:
    state = Mirror(url="")

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        state.hits[name] = state.hits.get(name, 0) + 1
        if name == "calico.yaml":
            return web.Response(body=BODY)
        if name == "busy.yaml":
            return web.Response(status=503)
        if name == "big.yaml":
            return web.Response(body=b"#" * (2 * 1024 * 1024))
        if name == "slow.yaml":
            await state.release.wait()  # answers only when the test is over
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


def sources(
    tmp_path: Path,
    *,
    releases: dict[str, str] | None = None,
    sha256: dict[str, str] | None = None,
    overrides: dict[str, str] | None = None,
    files: dict[str, Path] | None = None,
    timeout: float = 30,
) -> CniSources:
    return CniSources(
        releases=releases or {},
        sha256=sha256 or {},
        sources=overrides or {},
        files=files or {},
        cache_dir=tmp_path / "cache",
        timeout=timeout,
    )


async def test_a_pinned_url_is_downloaded_once_verified_and_reused_after_a_restart(
    tmp_path: Path, mirror: Mirror
) -> None:
    cni = sources(tmp_path, releases={"calico": f"{mirror.url}/calico.yaml"}, sha256={"calico": DIGEST})
    assert cni.cached("calico") is None
    first, second = await asyncio.gather(cni.local_path("calico"), cni.local_path("calico"))
    assert first == second == tmp_path / "cache" / f"{DIGEST}.yaml"
    assert first.read_bytes() == BODY and mirror.hits == {"calico.yaml": 1}
    restarted = sources(tmp_path, releases={"calico": f"{mirror.url}/calico.yaml"}, sha256={"calico": DIGEST})
    assert restarted.cached("calico") == first
    assert await restarted.local_path("calico") == first
    assert mirror.hits == {"calico.yaml": 1}
    options = await restarted.with_manifest("calico", RenderOptions())
    assert options.cni_manifests == {"calico": first}
    assert await restarted.with_manifest(None, RenderOptions()) == RenderOptions()


async def test_a_corrupt_cached_copy_is_downloaded_again(tmp_path: Path, mirror: Mirror) -> None:
    cni = sources(tmp_path, releases={"calico": f"{mirror.url}/calico.yaml"}, sha256={"calico": DIGEST})
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / f"{DIGEST}.yaml").write_bytes(b"tampered\n")
    assert cni.cached("calico") is None
    assert (await cni.local_path("calico")).read_bytes() == BODY
    assert mirror.hits == {"calico.yaml": 1}


async def test_a_url_without_sha256_is_never_downloaded(tmp_path: Path, mirror: Mirror) -> None:
    cni = sources(tmp_path, releases={"calico": f"{mirror.url}/calico.yaml"})
    with pytest.raises(PermanentError, match="no sha256 is pinned") as info:
        await cni.local_path("calico")
    assert info.value.reason == "CniSha256Missing" and mirror.hits == {}


async def test_a_wrong_sha256_is_refused_and_nothing_is_cached(tmp_path: Path, mirror: Mirror) -> None:
    cni = sources(tmp_path, releases={"calico": f"{mirror.url}/calico.yaml"}, sha256={"calico": "0" * 64})
    with pytest.raises(PermanentError, match=f"has sha256 {DIGEST}, expected 0000") as info:
        await cni.local_path("calico")
    assert info.value.reason == "CniSha256Mismatch"
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize(
    ("name", "error", "reason"),
    [
        ("busy.yaml", TemporaryError, "CniDownloadFailed"),
        ("gone.yaml", PermanentError, "CniDownloadFailed"),
        ("big.yaml", PermanentError, "CniManifestTooLarge"),
    ],
)
async def test_download_failures_are_classified(
    tmp_path: Path, mirror: Mirror, name: str, error: type[Exception], reason: str
) -> None:
    cni = sources(tmp_path, releases={"x": f"{mirror.url}/{name}"}, sha256={"x": DIGEST})
    with pytest.raises(error) as info:
        await cni.local_path("x")
    assert getattr(info.value, "reason", None) == reason


async def test_a_download_that_does_not_answer_in_time_is_retried_later(tmp_path: Path, mirror: Mirror) -> None:
    cni = sources(tmp_path, releases={"x": f"{mirror.url}/slow.yaml"}, sha256={"x": DIGEST}, timeout=0.2)
    with pytest.raises(TemporaryError, match="TimeoutError") as info:
        await cni.local_path("x")
    assert info.value.reason == "CniDownloadFailed"


async def test_an_unreachable_host_is_a_temporary_failure(tmp_path: Path) -> None:
    cni = sources(tmp_path, releases={"x": "http://127.0.0.1:9/calico.yaml"}, sha256={"x": DIGEST})
    with pytest.raises(TemporaryError):
        await cni.local_path("x")


async def test_a_mirror_serves_the_release_bytes_and_its_credentials_are_never_shown(
    tmp_path: Path, mirror: Mirror
) -> None:
    port = mirror.url.rsplit(":", 1)[1]
    cni = sources(
        tmp_path,
        releases={"calico": CALICO_URL},
        sha256={"calico": DIGEST},
        overrides={"calico": f"http://user:s3cret@127.0.0.1:{port}/calico.yaml?token=t0k3n"},
    )
    assert (await cni.local_path("calico")).read_bytes() == BODY
    assert "s3cret" not in cni.origin("calico").describe() and "t0k3n" not in cni.origin("calico").describe()
    bad = sources(
        tmp_path / "b",
        sha256={"calico": "1" * 64},
        overrides={"calico": f"http://user:s3cret@127.0.0.1:{port}/calico.yaml"},
    )
    with pytest.raises(PermanentError) as info:
        await bad.local_path("calico")
    assert "s3cret" not in str(info.value)


async def test_a_local_file_is_used_as_it_is_or_checked_when_a_sha256_is_given(tmp_path: Path) -> None:
    local = tmp_path / "calico.yaml"
    local.write_bytes(BODY)
    assert (
        await sources(tmp_path, releases={"calico": CALICO_URL}, overrides={"calico": str(local)}).local_path("calico")
        == local
    )
    assert await sources(tmp_path, files={"calico": local}).local_path("calico") == local
    checked = sources(tmp_path, files={"calico": local}, sha256={"calico": DIGEST})
    assert await checked.local_path("calico") == local
    local.write_bytes(BODY + b"# edited\n")
    with pytest.raises(PermanentError) as info:
        await checked.local_path("calico")
    assert info.value.reason == "CniSha256Mismatch"


async def test_an_unknown_cni_names_the_known_ones(tmp_path: Path) -> None:
    cni = sources(tmp_path, releases={"calico": CALICO_URL})
    with pytest.raises(InputError, match=r"unknown CNI 'flannel' \(known: calico\)") as info:
        await cni.local_path("flannel")
    assert info.value.reason == "UnknownCni"


async def test_an_unwritable_cache_is_a_clear_permanent_failure(tmp_path: Path, mirror: Mirror) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be\n", encoding="utf-8")
    cni = sources(tmp_path, releases={"calico": f"{mirror.url}/calico.yaml"}, sha256={"calico": DIGEST})
    with pytest.raises(PermanentError, match="CNI_CACHE_DIR") as info:
        await cni.local_path("calico")
    assert info.value.reason == "CniCacheUnwritable"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"overrides": {"calico": "calico.yaml"}},  # relative path
        {"overrides": {"calico": "ftp://mirror/calico.yaml"}},
        {"overrides": {"calico": "https://mirror/calico.yaml\nX: y"}},
        {"overrides": {"calico": "/srv/cni/calico.yaml\n"}},
        {"sha256": {"calico": "ABC"}},
    ],
)
def test_bad_origins_are_refused_when_settings_are_read(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        sources(tmp_path, releases={"calico": CALICO_URL}, **kwargs)


def test_the_default_settings_pin_calico_and_pass_their_own_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "O2_CAPI_RENDERER_CNI_RELEASES",
        "O2_CAPI_RENDERER_CNI_SHA256",
        "O2_CAPI_RENDERER_CNI_SOURCES",
        "O2_CAPI_RENDERER_CNI_MANIFESTS",
    ):
        monkeypatch.delenv(var, raising=False)
    resolver = CapiRendererSettings().cni_sources_resolver()
    origin = resolver.origin("calico")
    assert origin.location == CALICO_URL and origin.via == "release"
    assert CALICO_URL.startswith("https://") and "/v3.28." in CALICO_URL
