"""The inventory's field types: one validator per field syntax, each failure a custom error named by its rule.

Split from ``shared.inventory`` (the model and the whole-file validation). Every type enforces the
limits it publishes in the JSON Schema (``maxLength``, patterns), so the schema and validation never
disagree; addresses use the strict canonical parsing of ``shared.models``. ``ssh_key_file`` must name a
file in the SSH key directory (a setting; passed in through the validation context).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, StringConstraints, ValidationInfo
from pydantic_core import PydanticCustomError

from shared.models import (
    DNS1123_LABEL,
    HOST_ID_PATTERN,
    MAX_CIDR_TEXT,
    MAX_CLUSTER_NAME,
    MAX_IP_TEXT,
    VERSION_PATTERN,
    normalize_cidr,
    normalize_ip,
    normalize_version,
)
from shared.safe_json import short

LINUX_USER_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
#: Where ``ssh_key_file`` must point (where the Helm chart mounts the keys; ``O2_FOCOM_SSH_KEY_DIR`` and
#: ``O2_HOSTPREP_SSH_KEY_DIR`` override it): a key outside it, a ``..`` escape or a symlink out of it is refused.
DEFAULT_SSH_KEY_DIR = Path("/etc/focom-o2ims/ssh")
MAX_PASSWORD = 1024
MAX_PATH = 4096
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


# ── field types: each failure is a custom error whose type is the rule name ──────────────────


def _matcher(rule: str, pattern: str, what: str, max_length: int) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        # fullmatch: with match, "$" also matches before a trailing newline ("c1\n" would pass).
        if len(value) > max_length or not compiled.fullmatch(value):
            raise PydanticCustomError(rule, "{value} is not {what}", {"value": short(value), "what": what})
        return value

    return AfterValidator(check)


def _ip(value: str) -> str:
    try:
        return normalize_ip(value)
    except ValueError:
        raise PydanticCustomError(
            "ip-address", "{value} is not an IP address (no zone id, ASCII only)", {"value": short(value)}
        ) from None


def _cidr(value: str) -> str:
    try:
        return normalize_cidr(value)
    except ValueError as exc:
        raise PydanticCustomError(
            "cidr", "{value} is not a network in CIDR form ({why})", {"value": short(value), "why": str(exc)[:80]}
        ) from None


def _version(value: str) -> str:
    try:
        return normalize_version(value)
    except ValueError:
        raise PydanticCustomError(
            "k8s-version", "{value} is not a Kubernetes version [v]X.Y.Z", {"value": short(value)}
        ) from None


def _host_id_in(value: Any) -> Any:
    # Older inventories number their hosts (``"host_id": 1``); a host id is a label value, so text.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if len(key) > 253 or not _LABEL_KEY.fullmatch(key) or len(key.rpartition("/")[2]) > 63:
            raise PydanticCustomError("label-key", "{key} is not a label key", {"key": short(key)})
        if len(val) > 63 or not _LABEL_VALUE.fullmatch(val):
            raise PydanticCustomError("label-value", "{value} is not a label value", {"value": short(val)})
    return value


def key_file_problem(value: str, key_dir: Path) -> str | None:
    """Why ``value`` is not an acceptable ``ssh_key_file`` under ``key_dir``, or None.

    A relative path names a file inside the key directory; an absolute one must lie inside it.
    ``..`` is refused outright (even when it would come back inside), and where the file can be
    seen here its real path (symlinks followed) must stay inside the directory's real path.
    """
    if not value or len(value) > MAX_PATH or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        return "is not a usable file path"
    path = PurePosixPath(value)
    if ".." in path.parts:
        return "may not contain '..'"
    full = path if path.is_absolute() else PurePosixPath(key_dir) / path
    if not full.is_relative_to(PurePosixPath(key_dir)) or full == PurePosixPath(key_dir):
        return f"must be a file in the SSH key directory {key_dir}"
    if os.path.lexists(full):
        real, real_dir = Path(os.path.realpath(full)), Path(os.path.realpath(key_dir))
        if not real.is_relative_to(real_dir):
            return f"leads out of the SSH key directory {key_dir} (a symlink)"
    return None


def resolve_key_file(value: str, key_dir: Path) -> Path:
    """The key file's path (relative names are inside ``key_dir``); ValueError when it is not acceptable."""
    problem = key_file_problem(value, key_dir)
    if problem:
        raise ValueError(f"ssh_key_file {short(value)} {problem}")
    path = Path(value)
    return path if path.is_absolute() else key_dir / path


def _key_file(value: str, info: ValidationInfo) -> str:
    key_dir = Path((info.context or {}).get("ssh_key_dir") or DEFAULT_SSH_KEY_DIR)
    problem = key_file_problem(value, key_dir)
    if problem:
        rule = "path" if problem.startswith("is not") else "key-dir"
        raise PydanticCustomError(rule, "{value} {problem}", {"value": short(value), "problem": problem})
    return value


def _password(value: Any) -> Any:
    # Checked before SecretStr wraps it, so the rule is the same as every other over-long string.
    if isinstance(value, str) and len(value) > MAX_PASSWORD:
        raise PydanticCustomError(
            "max-length", "the password is longer than {limit} characters", {"limit": MAX_PASSWORD}
        )
    return value


def _schema(**extra: Any) -> Any:
    return Field(json_schema_extra=extra)


DnsLabel = Annotated[
    str,
    _matcher("dns1123", DNS1123_LABEL, "a DNS-1123 label (lower-case a-z, 0-9, '-', ≤ 63)", 63),
    _schema(pattern=DNS1123_LABEL, maxLength=63),
]
ClusterNameField = Annotated[
    str,
    _matcher("dns1123", DNS1123_LABEL, f"a DNS-1123 label of at most {MAX_CLUSTER_NAME} characters", MAX_CLUSTER_NAME),
    _schema(pattern=DNS1123_LABEL, maxLength=MAX_CLUSTER_NAME),
]


def _host_id_schema(schema: dict[str, Any]) -> None:
    schema.pop("type", None)
    schema["anyOf"] = [
        {"type": "string", "pattern": HOST_ID_PATTERN, "maxLength": 63},
        {"type": "integer", "minimum": 0, "description": "older inventories number their hosts"},
    ]


HostIdField = Annotated[
    str,
    BeforeValidator(_host_id_in),
    _matcher("label-value", HOST_ID_PATTERN, "a host id (label-value syntax, ≤ 63)", 63),
    Field(json_schema_extra=_host_id_schema),
]
# StringConstraints both enforce maxLength and publish it in the schema, so the two cannot disagree.
IpField = Annotated[
    str,
    StringConstraints(max_length=MAX_IP_TEXT),
    AfterValidator(_ip),
    _schema(anyOf=[{"format": "ipv4"}, {"format": "ipv6"}], pattern=r"^[0-9A-Fa-f:.]+$"),
]
CidrField = Annotated[
    str,
    StringConstraints(max_length=MAX_CIDR_TEXT),
    AfterValidator(_cidr),
    _schema(description="an IPv4 or IPv6 network, host bits zero", pattern=r"^[0-9A-Fa-f:.]+/[0-9]+$"),
]
VersionField = Annotated[
    str, StringConstraints(max_length=32), AfterValidator(_version), _schema(pattern=VERSION_PATTERN)
]
LinuxUser = Annotated[
    str,
    _matcher("linux-user", LINUX_USER_PATTERN, "a login name", 32),
    _schema(pattern=LINUX_USER_PATTERN, maxLength=32),
]
PasswordField = Annotated[SecretStr, BeforeValidator(_password)]
KeyFileField = Annotated[str, StringConstraints(max_length=MAX_PATH), AfterValidator(_key_file)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
