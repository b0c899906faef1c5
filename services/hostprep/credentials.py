"""Everything hostprep needs to reach a host, looked up by host id in hostprep's own files, never taken from the bus.

A job names its hosts by id only. The address, SSH port, login user and secret of each host come
from hostprep's copy of the inventory (the same ``input.json`` focom reads, validated with the
same rules); hosts without their own key fall back to the default key from settings. A host id
the inventory does not know fails that host. Host keys come from pinned keys (``host_id → public
key``) and, only for hosts with no pinned key, from a ``known_hosts`` file matched against the
inventory's address. Files are re-read when they change, always off the event loop. Secrets stay
``SecretStr``/paths; nothing here formats them into a message.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from services.hostprep.settings import HostprepSettings
from shared.errors import PermanentError
from shared.inventory import InventoryError, InventoryHost, parse_inventory, resolve_key_file
from shared.models import HostRef

#: hostprep does not judge which Kubernetes versions are supported (focom does): any version passes here.
_ANY_VERSION = ((0, 0), (1_000_000, 1_000_000))


@dataclass(frozen=True)
class HostCredentials:
    """How to log in to one host; ``repr`` shows no secret (SecretStr masks itself)."""

    host_id: str
    password: SecretStr | None
    key_file: Path | None
    passphrase: SecretStr | None

    @property
    def empty(self) -> bool:
        return self.password is None and self.key_file is None


class _FileCache:
    """A parsed file, re-parsed (in a thread) when its mtime or size changes."""

    def __init__(self, path: Path, parse: Any) -> None:
        self.path = path
        self._parse = parse
        self._stamp: tuple[int, int] | None = None
        self._value: Any = None
        self._lock = asyncio.Lock()

    async def get(self) -> Any:
        async with self._lock:
            stamp, value = await asyncio.to_thread(self._load_if_changed, self._stamp)
            if stamp != self._stamp:
                self._stamp, self._value = stamp, value
            return self._value

    def _load_if_changed(self, known: tuple[int, int] | None) -> tuple[tuple[int, int], Any]:
        try:
            st = self.path.stat()
        except OSError as exc:
            raise PermanentError(f"cannot read {self.path}: {exc.strerror}", reason="ConfigFileMissing") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == known:
            return stamp, None
        return stamp, self._parse(self.path)


def _parse_inventory(path: Path, key_dir: Path) -> dict[str, InventoryHost]:
    try:
        with path.open("rb") as fh:
            # The rule set focom runs (key files inside ``key_dir``); versions and VIPs are focom's to judge.
            inventory = parse_inventory(
                fh.read(), window=_ANY_VERSION, vip_pool=True, ssh_key_dir=key_dir, source=f"inventory {path.name}"
            )
    except InventoryError as exc:
        # Problems name paths and rules, never values of secret fields.
        raise PermanentError(exc.message, reason="InvalidInventory") from None
    except OSError as exc:
        raise PermanentError(f"cannot read {path}: {exc.strerror}", reason="ConfigFileMissing") from None
    hosts: dict[str, InventoryHost] = {}
    for entry in inventory.hosts:
        key = entry.ssh_key_file
        if key is not None:
            # Only files in the key directory (relative names are taken inside it); checked again here,
            # where the files are, so a symlink leading out of the directory is caught too.
            try:
                key = str(resolve_key_file(key, key_dir))
            except ValueError as exc:
                raise PermanentError(
                    f"inventory {path}: host {entry.host_id!r}: {exc}", reason="InvalidInventory"
                ) from None
        hosts[entry.host_id] = entry.model_copy(update={"ssh_key_file": key})
    return hosts


def _parse_pinned(path: Path) -> dict[str, tuple[str, ...]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PermanentError(f"pinned host keys {path}: not JSON/YAML: {exc}", reason="InvalidPinnedKeys") from None
    if not isinstance(data, dict):
        raise PermanentError(f"pinned host keys {path}: expected a mapping host_id -> key", reason="InvalidPinnedKeys")
    pinned: dict[str, tuple[str, ...]] = {}
    for host_id, keys in data.items():
        values = [keys] if isinstance(keys, str) else keys
        if not isinstance(values, list) or not all(isinstance(k, str) for k in values):
            raise PermanentError(
                f"pinned host keys {path}: {host_id}: expected a key or a list of keys", reason="InvalidPinnedKeys"
            )
        pinned[str(host_id)] = tuple(v.strip() for v in values if v.strip())
    return pinned


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class TrustSources:
    """The host keys hostprep may trust for one host: its pinned keys, else the known_hosts text."""

    pinned: tuple[str, ...]
    known_hosts: str | None


@dataclass(frozen=True)
class ResolvedHost:
    """One host as hostprep's own files describe it: where to connect, how to log in, which keys to trust."""

    ref: HostRef
    credentials: HostCredentials
    trust: TrustSources

    @property
    def host_id(self) -> str:
        return self.ref.host_id


class CredentialStore:
    """Resolves host ids to addresses, credentials and trusted host keys from the configured files."""

    def __init__(self, settings: HostprepSettings) -> None:
        self._default_key = settings.ssh_key_file
        self._passphrase = settings.ssh_key_passphrase
        parse = functools.partial(_parse_inventory, key_dir=settings.ssh_key_dir)
        self._inventory = _FileCache(settings.inventory_file, parse) if settings.inventory_file else None
        self._pinned = (
            _FileCache(settings.pinned_host_keys_file, _parse_pinned) if settings.pinned_host_keys_file else None
        )
        self._known_hosts = _FileCache(settings.known_hosts_file, _read_text) if settings.known_hosts_file else None

    async def resolve(self, host_id: str) -> ResolvedHost:
        """The host ``host_id`` from one reading of the inventory; ``PermanentError`` when unknown."""
        if self._inventory is None:
            raise PermanentError(
                f"host {host_id}: hostprep has no inventory (O2_HOSTPREP_INVENTORY_FILE) to "
                "look up its address and credentials in",
                reason="NoInventory",
            )
        hosts: dict[str, InventoryHost] = await self._inventory.get()
        entry = hosts.get(host_id)
        if entry is None:
            raise PermanentError(f"host {host_id} is not in hostprep's inventory", reason="UnknownHost")
        key = Path(entry.ssh_key_file) if entry.ssh_key_file else self._default_key
        creds = HostCredentials(host_id=host_id, password=entry.host_pwd, key_file=key, passphrase=self._passphrase)
        if creds.empty:
            raise PermanentError(
                f"no SSH credentials for host {host_id}: no ssh_key_file/host_pwd in the inventory and no default key",
                reason="NoCredentials",
            )
        return ResolvedHost(ref=entry.ref(), credentials=creds, trust=await self.trust(host_id))

    async def trust(self, host_id: str) -> TrustSources:
        pinned: tuple[str, ...] = ()
        if self._pinned is not None:
            table: dict[str, tuple[str, ...]] = await self._pinned.get()
            pinned = table.get(host_id, ())
        if pinned:
            # Pinned keys are the whole truth for this host: known_hosts (by address) does not widen them.
            return TrustSources(pinned=pinned, known_hosts=None)
        known = await self._known_hosts.get() if self._known_hosts is not None else None
        return TrustSources(pinned=(), known_hosts=known)
