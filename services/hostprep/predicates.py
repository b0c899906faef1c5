"""What a probe's answer means: the predicates that decide, from a read-only probe's output, whether
a recipe step's check holds (swap off, sysctls set, packages at a version and held, an /etc/hosts
entry, the agent unit in place, a file's sha256). Pure functions of a ``CommandResult``.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.hostprep import domain
from services.hostprep.hostlayout import SYSCTLS
from services.hostprep.ssh import CommandResult
from services.hostprep.steps import Holds


def swap_off(result: CommandResult) -> bool:
    parts = [*domain.sections(result.stdout), "", ""]
    active = [ln for ln in parts[0].splitlines()[1:] if ln.strip()]
    fstab = [ln.split() for ln in parts[1].splitlines()]
    persisted = [f for f in fstab if len(f) >= 3 and not f[0].startswith("#") and f[2] == "swap"]
    return not active and not persisted


def sysctls_set(result: CommandResult) -> bool:
    values = [ln.strip() for ln in result.stdout.splitlines()]
    return result.ok and values[: len(SYSCTLS)] == [v for _, v in SYSCTLS]


def packages_at(wanted: dict[str, str | None], held: Sequence[str] = ()) -> Holds:
    def holds(result: CommandResult) -> bool:
        parts = [*domain.sections(result.stdout), ""]
        found = domain.installed_packages(parts[0])
        holds_now = set(parts[1].split())
        for name, version in wanted.items():
            if name not in found or (version is not None and domain.upstream(found[name]) != version):
                return False
        return all(name in holds_now for name in held)

    return holds


def hosts_has(hostname: str) -> Holds:
    def holds(result: CommandResult) -> bool:
        for line in result.stdout.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 2 and hostname in words[1:]:
                return True
        return False

    return holds


def unit_ready(unit_sha: str) -> Holds:
    def holds(result: CommandResult) -> bool:
        parts = [p.strip() for p in domain.sections(result.stdout)] + ["", "", ""]
        return parts[0].split()[:1] == [unit_sha] and parts[1] == "enabled" and parts[2] == "active"

    return holds


def never(_result: CommandResult) -> bool:
    return False


def sha_is(expected: str) -> Holds:
    return lambda result: result.ok and result.stdout.split()[:1] == [expected]


def packages_absent(names: Sequence[str]) -> Holds:
    def holds(result: CommandResult) -> bool:
        return not set(domain.installed_packages(result.stdout)) & set(names)

    return holds
