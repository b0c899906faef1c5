"""Latency profiles: CPU-free delays per command class, so sandbox hosts take as long as real ones.

Real hosts spend their time waiting on apt mirrors, downloads, systemd and the API server, on their own
CPUs. A profile makes every sandbox host of a pool wait that long (an ``asyncio.sleep``, no CPU) before a
command of each class runs, so a fan-out over many hosts is bounded by latency, as in production, not by
the sandbox's own CPU. ``fast`` (no delays) is the default; ``realistic`` is what benchmarks and
``o2ctl demo --pace realistic`` use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

from shared.errors import InputError

#: Programs that fetch over the network.
_DOWNLOADERS = frozenset({"curl", "wget"})
_APT = frozenset({"apt-get", "apt"})
_SYSTEMCTL_VERBS = frozenset({"start", "restart", "reload", "reload-or-restart", "try-restart"})


@dataclass(frozen=True)
class LatencyProfile:
    """Seconds each command class waits before it runs (0: none)."""

    #: ``apt-get install`` / ``apt install`` (downloading and unpacking packages).
    package_install: float = 0.0
    #: ``curl`` / ``wget`` (fetching a file: the agent binary, a release key).
    download: float = 0.0
    #: ``systemctl start/restart/reload`` (and ``enable --now``).
    service_restart: float = 0.0
    #: The BYOH agent's registration of its ByoHost after it starts.
    agent_registration: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 600:
                raise InputError(f"latency {f.name} must be a number of seconds in [0, 600]", path=f.name)

    @property
    def is_zero(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def command_delay(self, argv: list[str]) -> float:
        """The delay for one simple command (argv[0] may be a path); 0 for every other command."""
        if not argv:
            return 0.0
        prog, args = argv[0].rsplit("/", 1)[-1], argv[1:]
        words = [a for a in args if not a.startswith("-")]
        # ``install`` anywhere among the operands: ``apt-get -o Opt=value install`` has option values first.
        if prog in _APT and "install" in words:
            return self.package_install
        if prog in _DOWNLOADERS:
            return self.download
        verb = words[0] if words else ""
        if prog == "systemctl" and (verb in _SYSTEMCTL_VERBS or (verb == "enable" and "--now" in args)):
            return self.service_restart
        return 0.0

    @classmethod
    def parse(cls, spec: str) -> LatencyProfile:
        """A profile name (``fast``, ``realistic``) or a JSON object with the field names."""
        spec = spec.strip()
        if spec in PROFILES:
            return PROFILES[spec]
        if not spec.startswith("{"):
            raise InputError(
                f"unknown latency profile {spec!r}; expected one of {', '.join(PROFILES)} or a JSON object"
            )
        try:
            data = json.loads(spec)
        except ValueError as exc:
            raise InputError(f"invalid JSON latency profile: {exc}") from None
        if not isinstance(data, dict):
            raise InputError("a JSON latency profile must be an object")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"invalid latency profile: {exc}") from None

    def to_json(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


FAST = LatencyProfile()
#: Typical figures for a host on a decent network: apt installs 3 s, downloads 1 s, service restarts
#: 0.5 s, agent registration 2 s.
REALISTIC = LatencyProfile(package_install=3.0, download=1.0, service_restart=0.5, agent_registration=2.0)
PROFILES: dict[str, LatencyProfile] = {"fast": FAST, "realistic": REALISTIC}
