"""The vocabulary of recipes: step and operation types, the recipe parameters, and the shell helpers
that build commands (quoting every value) and read their answers (sections, batched probes, verify).

Only plain POSIX shell is produced: no command substitution, ``set -e`` scripts, ``;``/``&&``/``||``,
redirections and ``$?``, so the same commands run on real hosts and on the sandbox hosts.
"""

from __future__ import annotations

import functools
import posixpath
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.hostprep import domain
from services.hostprep.domain import MARK
from services.hostprep.ssh import CommandResult
from shared.errors import PermanentError
from shared.models import DNS1123_LABEL, HostRef, normalize_version, version_tuple

APT_ENV = "DEBIAN_FRONTEND=noninteractive"

#: ``shlex.quote``, remembered: a recipe quotes the same package names, options and paths for every host.
q = functools.lru_cache(maxsize=4096)(shlex.quote)

#: What a word of a generated unit file may hold: no whitespace, quote, ``$``, ``%`` (a systemd
#: specifier), backslash or control character, so systemd and a shell read it the same way.
_UNIT_WORD = re.compile(r"[A-Za-z0-9_./=:,+@-]{1,1024}")
#: A line written into a host file: printable ASCII only (no newline that could start another entry).
_FILE_LINE = re.compile(r"[ -~]{1,4096}")
_NAMESPACE = re.compile(DNS1123_LABEL.strip("^$"))
_VERSION = re.compile(r"v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}")
_ABSOLUTE_PATH = re.compile(r"/[A-Za-z0-9_./+-]{1,1023}")


class UnsafeValue(PermanentError):
    """A value that would change the meaning of a generated host file or command (a newline in a unit, say)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="UnsafeValue")


def unit_word(value: str, what: str) -> str:
    """``value`` if it can be one word of a systemd unit line, else ``UnsafeValue``."""
    if not _UNIT_WORD.fullmatch(value):
        raise UnsafeValue(f"{what} {value!r} cannot go into a systemd unit (only letters, digits and _./=:,+@-)")
    return value


def file_line(value: str, what: str) -> str:
    """``value`` if it can be one line of a host file, else ``UnsafeValue``."""
    if not _FILE_LINE.fullmatch(value):
        raise UnsafeValue(f"{what} {value!r} cannot go into a host file (printable ASCII on one line only)")
    return value


def sh(*argv: str) -> str:
    """One command line with every word quoted."""
    return " ".join(q(a) for a in argv)


def script(*lines: str) -> str:
    """A multi-line script that stops at the first failing line."""
    return "\n".join(("set -e", *lines))


def probe_script(*commands: str) -> str:
    """Commands whose outputs come back as sections (see ``domain.sections``), whatever their status."""
    return f"; echo {MARK}; ".join(commands)


_PROBE_END = re.compile(r"^@@o2ims-probe:(?P<key>[^:]+):(?P<rc>[0-9]+)@@$")
VERIFY_MARK = "@@o2ims-verify@@"


def batch_probe(probes: Sequence[tuple[str, str]]) -> str:
    """Many probes in one round trip: each one's output is followed by a line with its key and exit status."""
    return "\n".join(f"{command}\necho @@o2ims-probe:{key}:$?@@" for key, command in probes)


def parse_batch(stdout: str) -> dict[str, CommandResult]:
    """The result of every probe that completed in a ``batch_probe`` run, by key."""
    found: dict[str, CommandResult] = {}
    lines: list[str] = []
    for line in stdout.splitlines():
        m = _PROBE_END.match(line.strip())
        if m is None:
            lines.append(line)
            continue
        found[m.group("key")] = CommandResult(int(m.group("rc")), "\n".join(lines) + ("\n" if lines else ""), "")
        lines = []
    return found


def with_verify(action: str, probe: str) -> str:
    """An action script followed, once it succeeded, by the step's probe (one round trip for both).

    The action's ``set -e`` stops the script before the marker when it fails; after the marker
    the probe runs without errexit and the script's status is the probe's.
    """
    return f"{action}\nset +e\necho {VERIFY_MARK}\n{probe}"


def install_from_stdin(path: str, mode: int) -> str:
    """A script that installs its standard input at ``path`` (owner root, ``mode``), atomically.

    For small files, secrets included: the content never appears on a command line, and one round trip
    replaces an SFTP session. The temporary file is made in a staging directory beside ``path`` that only
    root may enter (so nobody can open it in the moment before its ``mode`` is set, and keep reading what
    is written later), then renamed into place; the staging directory is removed whatever happened, and
    the script's status is the first failing command's.
    """
    directory = posixpath.dirname(path) or "/"
    stage = q(posixpath.join(directory, ".o2ims-upload"))
    tmp = q(posixpath.join(directory, ".o2ims-upload", posixpath.basename(path)))
    steps = (
        f"mkdir -p {q(directory)}",
        f"mkdir -p -m 0700 {stage}",
        f"chmod 0700 {stage}",
        f"rm -f {tmp}",
        f": > {tmp}",
        f"chmod {mode:04o} {tmp}",
        f"cat > {tmp}",
        f"mv -f {tmp} {q(path)}",
    )
    return "\n".join((" && ".join(steps), "rc=$?", f"rm -rf {stage}", 'test "$rc" -eq 0 || exit "$rc"'))


def split_verify(result: CommandResult) -> CommandResult | None:
    """The probe's part of a ``with_verify`` run, or None when the action failed before it."""
    _action_output, sep, tail = result.stdout.partition(f"{VERIFY_MARK}\n")
    if not sep:
        return None
    return CommandResult(result.exit_status, tail, result.stderr)


# ── the data model ─────────────────────────────────────────────────────────────────────


Holds = Callable[[CommandResult], bool]


def exit_ok(result: CommandResult) -> bool:
    return result.ok


@dataclass(frozen=True)
class Probe:
    """A read-only command; ``holds`` says from its result whether the step's target state is there."""

    command: str
    holds: Holds = exit_ok


@dataclass(frozen=True)
class Run:
    """Run a shell script as root; a non-zero exit fails the step."""

    command: str


@dataclass(frozen=True)
class Upload:
    """Put a file on the host (owner root): literal ``content`` or the configured agent binary."""

    path: str
    mode: int
    content: bytes | None = None
    agent_binary: bool = False
    #: Verified on the host before the staged copy is moved into place.
    sha256: str | None = None


@dataclass(frozen=True)
class Fail:
    """The action cannot be done with this configuration (e.g. no agent binary source)."""

    reason: str
    message: str


@dataclass(frozen=True)
class BootstrapKubeconfig:
    """Check: the host already has an agent identity, or holds a fresh bootstrap kubeconfig. Action:
    (re)create the host's BootstrapKubeconfig and upload its kubeconfig (0600)."""


@dataclass(frozen=True)
class ByoHostRegistered:
    """Check: a ByoHost labelled with the host id and the recipe's version exists. Action: wait for it (bounded)."""


@dataclass(frozen=True)
class ByoHostRemoved:
    """Check: no ByoHost nor BootstrapKubeconfig for the host id. Action: delete them (a claimed ByoHost
    fails the step: it is a live node) and wait until they are gone."""


@dataclass(frozen=True)
class StaleByoHostRemoved:
    """Check: no ByoHost of the host id registered at another version than the recipe's (or without a
    version label). Action: delete those (a claimed one fails the step) and wait until they are gone, so
    the restarted agent registers anew with its current labels (labels are set only at registration)."""


Check = Probe | BootstrapKubeconfig | ByoHostRegistered | ByoHostRemoved | StaleByoHostRemoved
Op = Run | Upload | Fail | BootstrapKubeconfig | ByoHostRegistered | ByoHostRemoved | StaleByoHostRemoved


@dataclass(frozen=True)
class Step:
    name: str
    check: Check | None
    action: tuple[Op, ...]
    rerun_after: tuple[str, ...] = ()
    #: Verify the action by running the check again (off for waits, whose action is the check).
    verify: bool = True
    #: False for steps that only talk to Kubernetes: the host's SSH slot is given back before them
    #: (they come last), so waiting for a ByoHost does not hold up other hosts' preparation.
    uses_ssh: bool = True
    description: str = ""
    #: Its action changes what the later steps' probes read (a reset before a re-install): once it acted,
    #: the remaining steps are probed again (one batch) instead of using the answers taken before.
    stales_probes: bool = False


@dataclass(frozen=True)
class AgentSource:
    """Where the agent binary comes from: a URL the host downloads, or bytes pushed over SFTP."""

    url: str | None = None
    sha256: str | None = None
    pushed: bool = False


@dataclass(frozen=True)
class RecipeParams:
    host: HostRef
    namespace: str
    k8s_version: str
    package_revision: str = "1.1"
    repo_base: str = "https://pkgs.k8s.io/core:/stable:"
    agent: AgentSource = field(default_factory=AgentSource)
    agent_path: str = "/usr/local/bin/byoh-hostagent"
    apt_lock_timeout: int = 300
    purge_packages: bool = False

    def __post_init__(self) -> None:
        # The job was validated on the bus; these values still end up in root's files on the host.
        if len(self.namespace) > 63 or not _NAMESPACE.fullmatch(self.namespace):
            raise UnsafeValue(f"namespace {self.namespace!r} is not a DNS-1123 label")
        if not _VERSION.fullmatch(self.k8s_version):
            raise UnsafeValue(f"Kubernetes version {self.k8s_version!r} is not [v]X.Y.Z")
        if not _ABSOLUTE_PATH.fullmatch(self.agent_path):
            raise UnsafeValue(f"agent path {self.agent_path!r} is not a plain absolute path")

    @functools.cached_property
    def version(self) -> str:
        """The normalised ``vX.Y.Z`` (the agent's version label, the ByoHost it registers)."""
        return normalize_version(self.k8s_version)

    @functools.cached_property
    def minor(self) -> str:
        major, minor, _ = version_tuple(self.k8s_version)
        return f"v{major}.{minor}"

    @functools.cached_property
    def repo_url(self) -> str:
        return f"{self.repo_base.rstrip('/')}/{self.minor}/deb/"

    @functools.cached_property
    def package_version(self) -> str:
        return domain.package_version(self.k8s_version, self.package_revision)

    def apt_get(self, *args: str) -> str:
        return f"{APT_ENV} {sh('apt-get', '-o', f'DPkg::Lock::Timeout={self.apt_lock_timeout}', *args)}"
