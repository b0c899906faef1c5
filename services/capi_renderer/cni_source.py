"""Where each CNI manifest comes from: pinned release URLs, overrides (a mirror or a local file), a disk cache.

A cluster names a CNI (``calico`` unless its inventory says otherwise); the renderer needs that
CNI's manifest as a local file. The origin of a name is, first match wins:

1. ``cni_sources[name]``: an override, a mirror URL or a local file (air-gapped sites);
2. ``cni_manifests[name]``: a local file (the chart mounts these);
3. ``cni_releases[name]``: the pinned upstream release URL (Calico's by default).

A URL is downloaded at most once: with a timeout and a size limit, checked against
``cni_sha256[name]`` (a URL without a sha256 is never downloaded: nothing would vouch for the bytes),
then stored in the cache directory under its sha256 with an atomic rename, so replicas sharing the
directory and restarts reuse it. A local file is used as it is, and checked when a sha256 is given.
Nothing here reads the network at import or at start; ``o2ctl plan`` only asks where a manifest
would come from (``origin``) and uses a cached copy when one is there.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import structlog
from yarl import URL

from services.capi_renderer.domain import MAX_OBJECT_BYTES, RenderOptions
from shared.errors import InputError, PermanentError, TemporaryError

log = structlog.get_logger(__name__)

CALICO_VERSION = "v3.28.2"
#: The pinned Calico release manifest (the install manifest published in the release's tag).
CALICO_URL = f"https://raw.githubusercontent.com/projectcalico/calico/{CALICO_VERSION}/manifests/calico.yaml"
#: The cache directory's name in the system's temporary directory when none is configured: writable in
#: the chart's pods (a read-only root file system with an emptyDir on /tmp) and on a workstation alike;
#: what is read from it is verified against the sha256 every time a process first uses it.
DEFAULT_CACHE_NAME = "focom-o2ims-cni"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SCHEMES = ("https", "http")


def is_url(location: str) -> bool:
    return location.split("://", 1)[0].lower() in _SCHEMES and "://" in location


def shown(location: str) -> str:
    """A location fit for logs and messages: a mirror URL's credentials are never shown."""
    if not is_url(location):
        return location
    url = URL(location)
    return str(url.with_user(None).with_password(None).with_query(None).with_fragment(None))


@dataclass(frozen=True)
class Origin:
    """Where CNI ``name``'s manifest comes from, and the sha256 it must have (None: not checked)."""

    name: str
    location: str
    sha256: str | None
    #: ``source`` (an override), ``file`` (``cni_manifests``) or ``release`` (the pinned release).
    via: str

    @property
    def is_url(self) -> bool:
        return is_url(self.location)

    def describe(self) -> str:
        digest = f"sha256 {self.sha256}" if self.sha256 else "no sha256 pinned"
        return f"{self.name}: {shown(self.location)} ({self.via}; {digest})"


class CniSources:
    """Resolves CNI names to local manifest files, downloading each pinned URL at most once."""

    def __init__(
        self,
        *,
        releases: Mapping[str, str],
        sha256: Mapping[str, str],
        sources: Mapping[str, str],
        files: Mapping[str, Path],
        cache_dir: Path | None,
        timeout: float,
        max_bytes: int = MAX_OBJECT_BYTES,
    ) -> None:
        self._origins: dict[str, Origin] = {}
        for via, table in (("release", releases), ("file", {k: str(v) for k, v in files.items()}), ("source", sources)):
            for name, location in table.items():
                self._origins[name] = Origin(name, location, sha256.get(name), via)
        for origin in self._origins.values():
            check_origin(origin)
        for name, digest in sha256.items():
            if not SHA256.fullmatch(digest):
                raise InputError(f"sha256 of CNI {name!r} is not 64 lowercase hex digits", path=f"cni_sha256.{name}")
        self._cache_dir = (cache_dir or Path(tempfile.gettempdir()) / DEFAULT_CACHE_NAME).expanduser()
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._locks: dict[str, asyncio.Lock] = {}
        self._verified: dict[str, tuple[Path, tuple[int, int]]] = {}

    def names(self) -> list[str]:
        return sorted(self._origins)

    def origin(self, name: str) -> Origin:
        found = self._origins.get(name)
        if found is None:
            known = ", ".join(self.names()) or "none configured"
            raise InputError(f"unknown CNI {name!r} (known: {known})", path="cni", reason="UnknownCni")
        return found

    def cache_path(self, origin: Origin) -> Path | None:
        """Where a URL origin's download is (or will be) kept; None for a local file or a URL without sha256."""
        if not origin.is_url or origin.sha256 is None:
            return None
        return self._cache_dir / f"{origin.sha256}.yaml"

    def cached(self, name: str) -> Path | None:
        """The local file of ``name`` if no download is needed (a local file, or a verified cached copy)."""
        origin = self.origin(name)
        if not origin.is_url:
            return Path(origin.location)
        path = self.cache_path(origin)
        if path is None or not path.is_file():
            return None
        try:
            return _verified(path, origin)
        except PermanentError:
            return None

    async def local_path(self, name: str) -> Path:
        """The local manifest file for CNI ``name``, downloading and caching it the first time.

        Raises ``InputError`` for an unknown name, ``PermanentError`` for a download that can never
        succeed as configured (no sha256, wrong sha256, refused, too large) and ``TemporaryError``
        for one worth retrying (timeouts, connection errors, 5xx, 429).
        """
        origin = self.origin(name)
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if not origin.is_url:
                local = Path(origin.location)
                if origin.sha256 is not None:
                    await self._verify_once(local, origin)
                return local
            path = self.cache_path(origin)
            if path is None:
                raise PermanentError(
                    f"CNI {name!r} comes from {shown(origin.location)} but no sha256 is pinned for it; set "
                    f'O2_CAPI_RENDERER_CNI_SHA256 (e.g. \'{{"{name}": "<sha256 of the manifest>"}}\') or point '
                    f"O2_CAPI_RENDERER_CNI_SOURCES at a local copy",
                    reason="CniSha256Missing",
                )
            if path.is_file():
                try:
                    await self._verify_once(path, origin)
                    return path
                except PermanentError:
                    log.warning("cni_cache_corrupt", cni=name, path=str(path))  # downloaded again below
            body = await self._download(origin)
            await asyncio.to_thread(_store, path, body)
            self._verified[name] = (path, _stamp(path))
            log.info("cni_manifest_cached", cni=name, source=shown(origin.location), path=str(path), bytes=len(body))
            return path

    async def with_manifest(self, cni: str | None, options: RenderOptions) -> RenderOptions:
        """``options`` with CNI ``cni``'s local manifest file added (unchanged when the cluster has no CNI)."""
        if cni is None:
            return options
        path = await self.local_path(cni)
        return options.model_copy(update={"cni_manifests": {**options.cni_manifests, cni: path}})

    async def _verify_once(self, path: Path, origin: Origin) -> None:
        seen = self._verified.get(origin.name)
        try:
            stamp = _stamp(path)
        except OSError as exc:
            raise PermanentError(
                f"CNI manifest {origin.name!r} is not readable: {exc.strerror}", reason="CniManifestMissing"
            ) from None
        if seen == (path, stamp):
            return
        await asyncio.to_thread(_verified, path, origin)
        self._verified[origin.name] = (path, stamp)

    async def _download(self, origin: Origin) -> bytes:
        where = shown(origin.location)
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(origin.location) as resp:
                if resp.status == 429 or resp.status >= 500:
                    raise TemporaryError(
                        f"CNI {origin.name!r}: {where} answered {resp.status}", reason="CniDownloadFailed"
                    )
                if resp.status != 200:
                    raise PermanentError(
                        f"CNI {origin.name!r}: {where} answered {resp.status}", reason="CniDownloadFailed"
                    )
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) >= self._max_bytes:
                        raise PermanentError(
                            f"CNI {origin.name!r}: {where} is larger than a ConfigMap can carry",
                            reason="CniManifestTooLarge",
                        )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TemporaryError(
                f"CNI {origin.name!r}: downloading {where} failed ({type(exc).__name__})", reason="CniDownloadFailed"
            ) from None
        digest = hashlib.sha256(body).hexdigest()
        if digest != origin.sha256:
            raise PermanentError(
                f"CNI {origin.name!r}: {where} has sha256 {digest}, expected {origin.sha256}",
                reason="CniSha256Mismatch",
            )
        return bytes(body)


def check_origin(origin: Origin) -> None:
    """A location is an http(s) URL without spaces, or an absolute file path."""
    where = f"cni_{origin.via}s.{origin.name}" if origin.via != "file" else f"cni_manifests.{origin.name}"
    if any(ord(c) < 32 or ord(c) == 127 for c in origin.location):
        raise InputError(f"CNI {origin.name!r}: the location contains a control character", path=where)
    if origin.is_url:
        try:
            url = URL(origin.location)
        except ValueError as exc:
            raise InputError(f"CNI {origin.name!r}: not a URL: {exc}", path=where) from None
        if not url.host or any(c.isspace() for c in origin.location):
            raise InputError(f"CNI {origin.name!r}: {shown(origin.location)} is not a usable URL", path=where)
    elif "://" in origin.location or not Path(origin.location).is_absolute():
        raise InputError(
            f"CNI {origin.name!r}: {origin.location!r} is neither an http(s) URL nor an absolute path", path=where
        )


def placeholder_text(origin: Origin) -> str:
    """What ``o2ctl plan`` shows in place of a manifest it did not download (YAML comments only)."""
    digest = (
        f"checked against sha256 {origin.sha256}"
        if origin.sha256
        else "no sha256 pinned yet: set O2_CAPI_RENDERER_CNI_SHA256 before real use"
    )
    return (
        f"# o2ctl plan downloads nothing: this stands for the {origin.name} manifest that capi_renderer\n"
        f"# carries here, from {shown(origin.location)} ({digest}),\n"
        "# downloaded once and cached, with its pod pool set to the cluster's pod CIDR.\n"
    )


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def _verified(path: Path, origin: Origin) -> Path:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise PermanentError(
            f"CNI manifest {origin.name!r} is not readable: {exc.strerror}", reason="CniManifestMissing"
        ) from None
    if digest != origin.sha256:
        raise PermanentError(
            f"CNI manifest {origin.name!r} at {path} has sha256 {digest}, expected {origin.sha256}",
            reason="CniSha256Mismatch",
        )
    return path


def _store(path: Path, body: bytes) -> None:
    """Write ``body`` to ``path`` atomically (a reader sees the old file or the whole new one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".download-", suffix=".yaml")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PermanentError(
            f"CNI cache directory {path.parent} is not writable: {exc.strerror} (set O2_CAPI_RENDERER_CNI_CACHE_DIR)",
            reason="CniCacheUnwritable",
        ) from None
