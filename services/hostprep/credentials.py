"""Where a host's SSH secret and trusted host keys come from: hostprep's own files, never the bus.

The inventory file (the same ``input.json`` focom reads) is parsed only for the fields needed
here (``host_id``, ``host_pwd``, ``ssh_key_file``); hosts without their own key fall back to the
default key from settings. Host keys come from pinned keys (``host_id → public key``) and/or a
``known_hosts`` file. Files are re-read when they change, always off the event loop. Secrets stay
``SecretStr``/paths; nothing here formats them into a message.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationError

from services.hostprep.settings import HostprepSettings
from shared.errors import PermanentError
from shared.inventory import resolve_key_file


def _host_id(value: Any) -> Any:
    # Inventories written like the user guide's number their hosts (``"host_id": 1``): the id is "1".
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


class _InventoryHost(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: Annotated[str, BeforeValidator(_host_id)]
    host_pwd: SecretStr | None = None
    ssh_key_file: Path | None = None


class _Inventory(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    hosts: tuple[_InventoryHost, ...] = ()


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


def _parse_inventory(path: Path, key_dir: Path) -> dict[str, _InventoryHost]:
    try:
        inventory = _Inventory.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        # include_input=False: a password must not end up in the error text.
        raise PermanentError(
            f"inventory {path}: {where}: {first['msg']}", reason="InvalidInventory"
        ) from None
    hosts: dict[str, _InventoryHost] = {}
    for entry in inventory.hosts:
        key = entry.ssh_key_file
        if key is not None:
            # Only files in the key directory (relative names are taken inside it); checked again here,
            # where the files are, so a symlink leading out of the directory is caught too.
            try:
                key = resolve_key_file(str(key), key_dir)
            except ValueError as exc:
                raise PermanentError(f"inventory {path}: host {entry.host_id!r}: {exc}",
                                     reason="InvalidInventory") from None  # fmt: skip
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
            raise PermanentError(f"pinned host keys {path}: {host_id}: expected a key or a list of keys",
                                 reason="InvalidPinnedKeys")
        pinned[str(host_id)] = tuple(v.strip() for v in values if v.strip())
    return pinned


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class TrustSources:
    """The host keys hostprep may trust for one host: pinned keys and the known_hosts text."""

    pinned: tuple[str, ...]
    known_hosts: str | None


class CredentialStore:
    """Looks up credentials and trusted host keys by host id from the configured files."""

    def __init__(self, settings: HostprepSettings) -> None:
        self._default_key = settings.ssh_key_file
        self._passphrase = settings.ssh_key_passphrase
        parse = functools.partial(_parse_inventory, key_dir=settings.ssh_key_dir)
        self._inventory = _FileCache(settings.inventory_file, parse) if settings.inventory_file else None
        self._pinned = (
            _FileCache(settings.pinned_host_keys_file, _parse_pinned) if settings.pinned_host_keys_file else None
        )
        self._known_hosts = _FileCache(settings.known_hosts_file, _read_text) if settings.known_hosts_file else None

    async def credentials(self, host_id: str) -> HostCredentials:
        entry: _InventoryHost | None = None
        if self._inventory is not None:
            hosts: dict[str, _InventoryHost] = await self._inventory.get()
            entry = hosts.get(host_id)
        key = entry.ssh_key_file if entry and entry.ssh_key_file else self._default_key
        creds = HostCredentials(
            host_id=host_id,
            password=entry.host_pwd if entry else None,
            key_file=key,
            passphrase=self._passphrase,
        )
        if creds.empty:
            raise PermanentError(
                f"no SSH credentials for host {host_id}: no ssh_key_file/host_pwd in the inventory and no default key",
                reason="NoCredentials",
            )
        return creds

    async def trust(self, host_id: str) -> TrustSources:
        pinned: tuple[str, ...] = ()
        if self._pinned is not None:
            table: dict[str, tuple[str, ...]] = await self._pinned.get()
            pinned = table.get(host_id, ())
        known = await self._known_hosts.get() if self._known_hosts is not None else None
        return TrustSources(pinned=pinned, known_hosts=known)
