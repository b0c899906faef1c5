"""The Dockerfile, parsed with ``dockerfile`` (BuildKit's own parser), since CI has no container engine."""

from __future__ import annotations

import os
import re
from pathlib import Path

import dockerfile
import pytest

from tests.deploy.chart import CHART, REPO, load_values

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
SECRET_NAME = re.compile(
    r"(^|/)(id_(rsa|dsa|ecdsa|ed25519)[^/]*|[^/]*\.(pem|key|p12|pfx|creds|jks)|\.env(\.[^/]*)?"
    r"|([^/]*[._-])?kubeconfig(\.(ya?ml|json))?|known_hosts|\.netrc|\.npmrc|\.pypirc|credentials(\.(json|ya?ml|ini))?"
    r"|\.git-credentials)$",
    re.IGNORECASE,
)
SECRET_CONTENT = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|BEGIN NATS USER JWT|client-key-data:|\btoken:\s*\S{20,}"
)
SECRET_VAR = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|PRIVATE|CREDENTIAL|API_KEY|ACCESS_KEY", re.IGNORECASE)


def _commands() -> tuple[dockerfile.Command, ...]:
    return dockerfile.parse_file(str(DOCKERFILE))


def _stages() -> list[list[dockerfile.Command]]:
    stages: list[list[dockerfile.Command]] = []
    for cmd in _commands():
        if cmd.cmd == "FROM":
            stages.append([cmd])
        elif stages:
            stages[-1].append(cmd)
    return stages


def _global_args() -> dict[str, str]:
    args = {}
    for cmd in _commands():
        if cmd.cmd == "FROM":
            break
        if cmd.cmd == "ARG":
            name, _, default = cmd.value[0].partition("=")
            args[name] = default
    return args


def _expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negated, _ignore_regex(pattern)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether .dockerignore keeps ``path`` (relative, posix) out of the build context: the last match wins,
    a pattern matching a parent directory matches its contents."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negated, regex in rules:
        if any(regex.match(c) for c in candidates):
            result = not negated
    return result


def _context_files(source: str, rules: list[tuple[bool, re.Pattern[str]]]) -> list[str]:
    root = REPO / source
    if root.is_file():
        return [] if excluded(source, rules) else [source]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(REPO).as_posix()
            if not excluded(rel, rules):
                files.append(rel)
    return files


def _context_copies() -> list[tuple[dockerfile.Command, list[str]]]:
    """COPY/ADD instructions that read the build context (not another stage), with their sources."""
    out = []
    for cmd in _commands():
        if cmd.cmd in ("COPY", "ADD") and not any(f.startswith("--from") for f in cmd.flags):
            out.append((cmd, list(cmd.value[:-1])))
    return out


def test_multi_stage_build_on_a_pinned_slim_python() -> None:
    stages = _stages()
    assert len(stages) >= 2, "multi-stage: build wheels, then a clean runtime stage"
    args = _global_args()
    names = set()
    for stage in stages:
        image, *rest = stage[0].value
        image = _expand(image, args)
        if image in names:
            continue
        assert re.search(r"@sha256:[0-9a-f]{64}$", image) or re.search(r":\d+\.\d+\.\d+[-\w.]*$", image), (
            f"base image {image!r} must be pinned by digest or by a full X.Y.Z version"
        )
        assert image.startswith("python:") and "slim" in image, f"{image!r}: a slim Python base"
        if len(rest) == 2 and rest[0].upper() == "AS":
            names.add(rest[1])


def test_runtime_stage_runs_as_the_charts_non_root_user() -> None:
    final = _stages()[-1]
    users = [c for c in final if c.cmd == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].value[0]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid (so runAsNonRoot can verify it)"
    assert gid == "" or (gid.isdigit() and int(gid) != 0)
    last_run = max((i for i, c in enumerate(final) if c.cmd == "RUN"), default=-1)
    assert final.index(users[-1]) > last_run, "USER comes after the last RUN"
    pod = load_values(CHART / "values.yaml")["podSecurityContext"]
    assert pod["runAsUser"] == int(uid) and pod["runAsNonRoot"] is True


def test_project_is_installed_from_a_wheel() -> None:
    build, final = _stages()[0], _stages()[-1]
    assert any(c.cmd == "RUN" and "pip wheel" in c.value[0] for c in build)
    installs = [c for c in final if c.cmd == "RUN" and "pip install" in c.value[0]]
    assert installs and all("--no-index" in c.value[0] for c in installs), "installs only the built wheels"
    assert not [c for c in final if c.cmd in ("COPY", "ADD") and not any(f.startswith("--from") for f in c.flags)], (
        "the runtime stage copies no source from the context"
    )


def test_entrypoint_runs_a_service_module() -> None:
    final = _stages()[-1]
    (entrypoint,) = [c for c in final if c.cmd == "ENTRYPOINT"]
    (cmd,) = [c for c in final if c.cmd == "CMD"]
    assert entrypoint.json and cmd.json, "exec form, so the service is PID 1 and gets SIGTERM"
    argv = [*entrypoint.value, *cmd.value]
    assert argv[:2] == ["python", "-m"] and len(argv) == 3
    match = re.fullmatch(r"services\.(\w+)", argv[2])
    assert match and (REPO / "services" / match.group(1) / "__main__.py").is_file()


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    rules = _ignore_rules()
    copies = _context_copies()
    assert copies
    for cmd, sources in copies:
        for source in sources:
            assert not re.match(r"^[a-z]+://", source), f"line {cmd.start_line}: no remote sources"
            assert source not in (".", "./", "*"), f"line {cmd.start_line}: copy named paths, not the whole context"
            assert (REPO / source).exists(), f"line {cmd.start_line}: {source} does not exist"
            assert _context_files(source, rules), f"line {cmd.start_line}: .dockerignore excludes {source}"


def test_no_secrets_or_credentials_are_copied_in() -> None:
    rules = _ignore_rules()
    for _cmd, sources in _context_copies():
        for source in sources:
            for rel in _context_files(source, rules):
                assert not SECRET_NAME.search(rel), f"{rel} looks like a credential"
                data = (REPO / rel).read_bytes()[:200_000].decode("utf-8", errors="ignore")
                assert not SECRET_CONTENT.search(data), f"{rel} holds credential material"
    for cmd in _commands():
        if cmd.cmd in ("ENV", "ARG", "LABEL"):
            names = cmd.value[0::2] if cmd.cmd != "ARG" else [v.partition("=")[0] for v in cmd.value]
            for name in names:
                assert not SECRET_VAR.search(name), f"line {cmd.start_line}: {cmd.cmd} {name} looks like a secret"
        if cmd.cmd == "RUN":
            assert not re.search(r"(curl|wget)\b", cmd.value[0]), "nothing fetched outside the package index"


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "keys/id_ed25519",
        "services/focom/dev.pem",
        "bench/x.py",
        "deploy/helm/focom-o2ims/values.yaml",
        "shared/.env",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert excluded(path, _ignore_rules())


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "README.md",
        "shared/bus.py",
        "services/focom/__main__.py",
        "services/capi_renderer/templates/cluster.yaml.j2",
        "o2ctl/cli.py",
    ],
)
def test_dockerignore_keeps_in(path: str) -> None:
    assert not excluded(path, _ignore_rules())
