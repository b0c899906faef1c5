"""Injectable faults: what a sandbox host does wrong on purpose (one fault per host at a time)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from shared.errors import InputError

FaultKind = Literal[
    "unreachable",
    "wrong_host_key",
    "auth_failure",
    "command_failure",
    "slow_command",
    "drop_connection",
    "bootstrap_failure",
]

FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]
_COMMAND_KINDS = {"command_failure", "slow_command", "drop_connection"}


@dataclass(frozen=True)
class Fault:
    """One fault. ``pattern`` (a regex searched in the client's command line) applies to the command kinds.

    ``times`` limits how often a command fault fires (None: every time), which lets tests model a
    transient failure that a retry gets past.
    """

    kind: FaultKind
    pattern: str = ""
    exit_code: int = 1
    stderr: str = ""
    delay: float = 0.0
    message: str = "injected bootstrap failure"
    times: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise InputError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}", path="kind")
        if self.kind in _COMMAND_KINDS:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise InputError(f"invalid fault pattern: {exc}", path="pattern") from None

    @classmethod
    def unreachable(cls) -> Fault:
        return cls("unreachable")

    @classmethod
    def wrong_host_key(cls) -> Fault:
        return cls("wrong_host_key")

    @classmethod
    def auth_failure(cls) -> Fault:
        return cls("auth_failure")

    @classmethod
    def command_failure(cls, pattern: str, exit_code: int = 1, stderr: str = "", times: int | None = None) -> Fault:
        return cls("command_failure", pattern=pattern, exit_code=exit_code, stderr=stderr, times=times)

    @classmethod
    def slow_command(cls, pattern: str, delay: float, times: int | None = None) -> Fault:
        return cls("slow_command", pattern=pattern, delay=delay, times=times)

    @classmethod
    def drop_connection(cls, pattern: str, times: int | None = None) -> Fault:
        return cls("drop_connection", pattern=pattern, times=times)

    @classmethod
    def bootstrap_failure(cls, message: str = "injected bootstrap failure") -> Fault:
        return cls("bootstrap_failure", message=message)

    def matches(self, command_line: str) -> bool:
        return self.kind in _COMMAND_KINDS and re.search(self.pattern, command_line) is not None

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse a CLI spec: a kind name, ``kind:pattern`` or a JSON object with the field names."""
        spec = spec.strip()
        if spec.startswith("{"):
            try:
                data = json.loads(spec)
            except ValueError as exc:
                raise InputError(f"invalid JSON fault spec: {exc}") from None
            if not isinstance(data, dict):
                raise InputError("a JSON fault spec must be an object")
            try:
                return cls(**data)
            except TypeError as exc:
                raise InputError(f"invalid fault spec: {exc}") from None
        kind, _, pattern = spec.partition(":")
        return cls(kind, pattern=pattern)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
