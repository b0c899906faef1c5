"""Loading the CNI manifests the ClusterResourceSet carries, with the checks that keep them embeddable.

A manifest is read once per (path, mtime, size) and kept in memory; the renderer puts its text into
a ConfigMap as a YAML literal block, so anything a literal block cannot hold verbatim is refused here.
The pod-pool CIDRs the manifest declares (``*_IPV4POOL_CIDR`` / ``*_IPV6POOL_CIDR`` env values) are
extracted so the validator can compare them with the cluster's pod CIDR, and the ConfigMap/Secret
objects that carry such payloads get their structural check here (no CRD describes them).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.capi_renderer.domain import MAX_OBJECT_BYTES
from shared.errors import PermanentError

# What a YAML literal block carries verbatim: printable characters minus the ones YAML 1.1 reads
# as line breaks (NEL, LS, PS) and the byte-order mark.
NOT_BLOCK_SAFE = re.compile(
    "[^\x09\x0a\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_POOL_NAME = re.compile(r"""^\s*-?\s*name:\s*["']?([A-Z0-9_]*_IPV[46]POOL_CIDR)["']?\s*$""", re.ASCII)
_POOL_VALUE = re.compile(r"""^\s*value:\s*["']?([^"'\s#]+)["']?\s*(#.*)?$""", re.ASCII)
_COMMENTED_NAME = re.compile(r"""^(\s*)# ?(\s*-\s*name:\s*["']?([A-Z0-9_]*_IPV[46]POOL_CIDR)["']?\s*)$""", re.ASCII)
_COMMENTED_VALUE = re.compile(r"""^(\s*)# ?(\s*value:\s*)["']?[^"'\s#]+["']?\s*$""", re.ASCII)
_PLAIN_CIDR = re.compile(r"^[0-9a-fA-F.:]{2,39}/[0-9]{1,3}$")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class CniManifest:
    """One CNI manifest as loaded: the text to embed and the pod pools it declares."""

    name: str
    text: str
    #: ``(env name, CIDR text)`` of every uncommented pool setting, in file order.
    pools: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        """The ConfigMap data key that carries the manifest."""
        return f"{self.name}.yaml"

    def for_pod_cidr(self, pod_cidr: str) -> CniManifest:
        """This manifest with every pool of the pod CIDR's IP family set to that CIDR.

        The CNI's pod pool must equal ``clusterNetwork.pods``; rewriting the declared value (as one
        would edit ``CALICO_IPV4POOL_CIDR`` by hand) lets one manifest serve clusters with different
        pod networks. Pools of the other family and commented-out settings are left as they are.
        """
        return _with_pool(self, pod_cidr)


_cache: dict[tuple[str, Path], tuple[tuple[int, int], CniManifest]] = {}
_lock = threading.Lock()


@functools.lru_cache(maxsize=32)
def find_pools(text: str) -> tuple[tuple[str, str], ...]:
    """Pool CIDR settings declared as container env (``- name: X_IPV4POOL_CIDR`` then ``value: …``).

    Commented-out settings (as in the stock Calico manifest) are ignored: the CNI's default applies.
    Only the lines around each ``POOL_CIDR`` occurrence are examined, so large manifests stay cheap.
    """
    found: list[tuple[str, str]] = []
    at = text.find("POOL_CIDR")
    while at != -1:
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end == -1 else end
        m = _POOL_NAME.match(text[start:end])
        if m:
            for follow in text[end + 1 :].split("\n", 3)[:3]:
                if follow.lstrip().startswith("#") or not follow.strip():
                    continue
                v = _POOL_VALUE.match(follow)
                if v:
                    found.append((m.group(1), v.group(1)))
                break
        at = text.find("POOL_CIDR", end)
    return tuple(found)


@functools.lru_cache(maxsize=64)
def _with_pool(manifest: CniManifest, pod_cidr: str) -> CniManifest:
    net = plain_cidr(manifest.name, pod_cidr)
    family = f"_IPV{net.version}POOL_CIDR"
    declared = [cidr for env, cidr in manifest.pools if family in env]
    if declared and all(cidr == pod_cidr for cidr in declared):
        return manifest
    lines = manifest.text.split("\n")
    if declared:
        _set_declared(lines, family, pod_cidr)
    elif not _uncomment_first(lines, family, pod_cidr):
        return manifest  # the CNI declares no pool of this family: its own default applies
    text = "\n".join(lines)
    changed = CniManifest(name=manifest.name, text=text, pools=find_pools(text))
    recheck(manifest, changed, family, pod_cidr)
    return changed


def _set_declared(lines: list[str], family: str, pod_cidr: str) -> None:
    """Set the value of every uncommented pool setting of ``family`` (as one edits ``CALICO_IPV4POOL_CIDR``)."""
    for i, line in enumerate(lines[:-1]):
        m = _POOL_NAME.match(line)
        if not m or family not in m.group(1):
            continue
        for j in range(i + 1, min(i + 4, len(lines))):
            follow = lines[j]
            if follow.lstrip().startswith("#") or not follow.strip():
                continue
            v = _POOL_VALUE.match(follow)
            if v:
                lines[j] = follow[: v.start(1)] + pod_cidr + follow[v.end(1) :]
            break


def _uncomment_first(lines: list[str], family: str, pod_cidr: str) -> bool:
    """Turn the first commented-out pool setting of ``family`` into a live one with the pod CIDR.

    The stock Calico manifest ships ``CALICO_IPV4POOL_CIDR`` commented out (two lines, ``# - name``
    then ``#   value``); removing the ``# `` after the indentation gives the list item its siblings have.
    """
    for i, line in enumerate(lines[:-1]):
        m = _COMMENTED_NAME.match(line)
        v = _COMMENTED_VALUE.match(lines[i + 1])
        if m and v and family in m.group(3) and m.group(1) == v.group(1):
            lines[i] = m.group(1) + m.group(2).rstrip()
            lines[i + 1] = f'{v.group(1)}{v.group(2)}"{pod_cidr}"'
            return True
    return False


def plain_cidr(name: str, text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``text`` as a network, if it is nothing but a CIDR (digits, dots, colons, one prefix length)."""
    try:
        if not _PLAIN_CIDR.fullmatch(text):
            raise ValueError(text)
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise PermanentError(
            f"CNI manifest {name!r}: pod CIDR {text!r} is not a plain CIDR", reason="CniManifestInvalid"
        ) from None


def recheck(before: CniManifest, after: CniManifest, family: str, pod_cidr: str) -> None:
    """After the pod CIDR went in: the same YAML documents, and every pool of ``family`` exactly the pod CIDR.

    The substitution edits text; this proves on the parsed result that nothing but the pool value moved.
    """
    problem = None
    try:
        same_docs = document_ids(before.text) == document_ids(after.text)
        values = set(_env_values(after.text, family))
    except yaml.YAMLError as exc:
        problem = f"no longer parses as YAML ({type(exc).__name__})"
    else:
        if not same_docs:
            problem = "its documents changed"
        elif values != {pod_cidr} or any(cidr != pod_cidr for env, cidr in after.pools if family in env):
            problem = f"its {family.strip('_')} settings are {sorted(map(str, values))}, not [{pod_cidr!r}]"
    if problem is not None:
        raise PermanentError(
            f"CNI manifest {before.name!r} with pod CIDR {pod_cidr}: {problem}", reason="CniManifestInvalid"
        )


@functools.lru_cache(maxsize=16)
def document_ids(text: str) -> tuple[tuple[str, str, str, str], ...]:
    """``(apiVersion, kind, namespace, name)`` of every document (empty documents skipped)."""
    out: list[tuple[str, str, str, str]] = []
    for doc in yaml.load_all(text, Loader=_LOADER):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            out.append(("", type(doc).__name__, "", ""))
            continue
        meta = doc.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        out.append(
            (str(doc.get("apiVersion")), str(doc.get("kind")), str(meta.get("namespace")), str(meta.get("name")))
        )
    return tuple(out)


def _env_values(text: str, family: str) -> list[Any]:
    """Values of every ``{name: *<family>, value: …}`` mapping anywhere in the parsed documents."""
    found: list[Any] = []
    stack: list[Any] = list(yaml.load_all(text, Loader=_LOADER))
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("name")
            if isinstance(name, str) and name.endswith(family) and "value" in node:
                found.append(node["value"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def check_text(name: str, text: str) -> str:
    """Normalise line ends and refuse what cannot travel in a YAML literal block or a ConfigMap."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    bad = NOT_BLOCK_SAFE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise PermanentError(
            f"CNI manifest {name!r} contains a character YAML cannot carry (U+{ord(bad.group()):04X}) on line {line}",
            reason="CniManifestInvalid",
        )
    if not text.strip():
        raise PermanentError(f"CNI manifest {name!r} is empty", reason="CniManifestInvalid")
    if len(text.encode()) >= MAX_OBJECT_BYTES:
        raise PermanentError(
            f"CNI manifest {name!r} is {len(text.encode())} bytes; a ConfigMap must stay under 1 MiB",
            reason="CniManifestTooLarge",
        )
    return text


def load_manifest(name: str, path: Path) -> CniManifest:
    """The manifest for CNI ``name`` read from ``path`` (cached until the file changes).

    Blocking (a stat, and a read on change): call it from a worker thread in async code.
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise PermanentError(
            f"CNI manifest {name!r} is not readable: {exc.strerror}", reason="CniManifestMissing"
        ) from None
    stamp = (st.st_mtime_ns, st.st_size)
    key = (name, path)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PermanentError(
            f"CNI manifest {name!r} cannot be read as UTF-8: {exc}", reason="CniManifestInvalid"
        ) from None
    text = check_text(name, raw)
    pools = find_pools(text)
    for env, cidr in pools:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            raise PermanentError(
                f"CNI manifest {name!r}: {env} value {cidr!r} is not a CIDR", reason="CniManifestInvalid"
            ) from None
    manifest = CniManifest(name=name, text=text, pools=pools)
    with _lock:
        _cache[key] = (stamp, manifest)
    return manifest


def check_payload_object(obj: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """ConfigMap/Secret checks (no CRD describes them): fields, keys, string values, base64 for Secrets."""
    kind = obj.get("kind")
    allowed = {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}
    if kind == "Secret":
        allowed |= {"type", "stringData"}
    if obj.get("apiVersion") != "v1":
        yield "apiVersion", "api-version", f"{kind} must be v1"
    for key in obj:
        if key not in allowed:
            yield str(key), "unknown-field", f'unknown field "{key}"'
    data = obj.get("data")
    if data is not None and not isinstance(data, Mapping):
        yield "data", "type", "data must be a map of strings"
        return
    for key, value in (data or {}).items():
        if not isinstance(key, str) or not _CONFIG_KEY.fullmatch(key) or len(key) > 253:
            yield f"data[{key}]", "config-key", f"invalid data key {key!r}"
        if not isinstance(value, str):
            yield f"data[{key}]", "type", "data values must be strings"
        elif kind == "Secret" and not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", value):
            yield f"data[{key}]", "format", "Secret data must be base64"


def payload_size(obj: Mapping[str, Any]) -> int:
    """Serialized size, counting large string data by its UTF-8 length instead of re-encoding it all."""
    data = obj.get("data")
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        return len(json.dumps(obj, ensure_ascii=False, default=str).encode())
    rest = {k: v for k, v in obj.items() if k != "data"}
    body = sum(len(str(k).encode()) + len(v.encode()) + 6 for k, v in data.items())
    return len(json.dumps(rest, ensure_ascii=False, default=str).encode()) + body


def payload_issues(obj: Mapping[str, Any], pod_cidr: str) -> Iterator[tuple[str, str, str]]:
    """A CRS payload's size limit, and (ConfigMaps) every declared pool CIDR equal to the pod CIDR."""
    size = payload_size(obj)
    if size >= MAX_OBJECT_BYTES:
        yield "data", "size", f"{size} bytes; the API server refuses objects of 1 MiB or more"
    data = obj.get("data")
    if obj.get("kind") != "ConfigMap" or not isinstance(data, Mapping):
        return
    pod_net = ipaddress.ip_network(pod_cidr)
    family = f"_IPV{pod_net.version}POOL_CIDR"
    for key, text in data.items():
        for env, cidr in find_pools(text) if isinstance(text, str) else ():
            if family not in env:
                continue  # a pool of the other IP family (dual-stack) is not the pod CIDR's to match
            try:
                same = ipaddress.ip_network(cidr, strict=False) == pod_net
            except ValueError:
                same = False
            if not same:
                yield f"data[{key}]", "cni-pool", f"{env}={cidr} differs from the pod CIDR {pod_cidr}"


def clear_cache() -> None:
    """Forget loaded manifests (tests, or a settings reload)."""
    with _lock:
        _cache.clear()
