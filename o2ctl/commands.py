"""The o2ctl commands that talk to a running system or read files: submit, approve/reject, status, events,
kubeconfig, validate, schema and plan. Each returns an exit code (see ``o2ctl.cli``)."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from o2ctl import client, live
from o2ctl.output import emit, is_terminal, machine, printable, table
from services.focom.settings import FocomSettings
from shared.errors import InputError, ServiceError
from shared.inventory import InventoryError, all_clusters_problems, inventory_json_schema, load_inventory
from shared.kinds import Decision
from shared.messages import decode
from shared.payloads import FocomDecision, FocomRequest
from shared.settings import load_settings
from shared.subjects import ALL_O2IMS_STATUS, FOCOM, FOCOM_REQUESTS, O2IMS, focom_status

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_READY = 0, 1, 2, 3, 4
#: Rows ``validate`` prints as a table; the rest are counted (``-o json``/``yaml`` lists every problem).
VALIDATE_TABLE_ROWS = 200


def _print_json(value: Any) -> None:
    emit(value, "json")


def _console() -> Console:
    return Console(stderr=False, highlight=False)


# ── validate / schema ──────────────────────────────────────────────────────────────────


def focom_settings(ssh_key_dir: Path | None = None) -> FocomSettings:
    """focom's settings from this environment; a running sandbox's key directory unless one is set."""
    focom = load_settings(FocomSettings)
    if ssh_key_dir is not None and "O2_FOCOM_SSH_KEY_DIR" not in os.environ:
        focom = focom.model_copy(update={"ssh_key_dir": ssh_key_dir})
    return focom


def validate(path: Path, output: str, *, ssh_key_dir: Path | None = None) -> int:
    # The rules of an allClusters request to a focom configured like this environment (window, VIP pool,
    # key directory): the same functions focom runs, so validate and a request never disagree.
    focom = focom_settings(ssh_key_dir)
    try:
        inv = load_inventory(path, **focom.inventory_rules())
        extra = all_clusters_problems(inv, max_clusters=focom.max_clusters_per_request)
        if extra:
            raise InventoryError(extra, source=f"inventory {path.name}")
    except InventoryError as exc:
        problems = [{"path": p.path, "rule": p.rule, "message": p.message} for p in exc.problems]
        if machine(output):
            emit({"valid": False, "problems": problems}, output)
            return EXIT_USAGE
        shown = problems[:VALIDATE_TABLE_ROWS]
        rest = len(problems) - len(shown)
        more = f"… and {rest} more problem(s) not shown; `-o json` lists them all" if rest else None
        table(
            f"{path}: {len(problems)} problem(s)",
            ("path", "rule", "message"),
            [(p["path"], p["rule"], p["message"]) for p in shown],
            footer=more,
        )
        return EXIT_USAGE
    names = [c.cluster_name for c in inv.clusters]
    if machine(output):
        emit({"valid": True, "hosts": len(inv.hosts), "clusters": names}, output)
    else:
        print(printable(f"{path}: valid ({len(inv.hosts)} hosts, clusters: {', '.join(names) or 'none'})"))
    return EXIT_OK


def schema(which: str) -> int:
    if which == "inventory":
        _print_json(inventory_json_schema())
    else:
        _print_json(FocomRequest.model_json_schema())
    return EXIT_OK


# ── submit / status / events ───────────────────────────────────────────────────────────


async def submit(t: client.Target, request: FocomRequest, *, wait: bool, timeout: float, output: str) -> int:
    bus = await client.open_bus(t)
    try:
        started = datetime.now(UTC)
        env = await bus.emit(FOCOM_REQUESTS, request, correlation_id=request.name)
        if not wait:
            result = {"submitted": request.name, "operation": request.operation, "message_id": str(env.id)}
            if machine(output):
                emit(result, output)
            else:
                print(printable(f"submitted {request.operation} {request.name}"))
            return EXIT_OK
        console = _console() if not machine(output) and is_terminal() else None
        try:
            state = await live.follow(
                bus,
                request.name,
                request.operation,
                timeout=timeout,
                console=console,
                start=started,
                plain=console is None and not machine(output),
                cause=env.id,
            )
        except TimeoutError:
            print(printable(f"o2ctl submit: {request.name} did not settle within {timeout:.0f}s"), file=sys.stderr)
            return EXIT_FAILED
        return _report(state, output)
    finally:
        await bus.close()


async def decide(t: client.Target, name: str, decision: Decision, *, wait: bool, timeout: float, output: str) -> int:
    """``o2ctl approve|reject NAME``: the approver's decision on a request waiting in PendingApproval."""
    bus = await client.open_bus(t)
    try:
        got = (await client.fpr_records(bus)).get(name)
        if got is None or got.get("pending") is None or got.get("generation", 0) != 0:
            phase = got.get("phase") if got else None
            print(
                printable(
                    f"o2ctl {decision}: {name} is not waiting for approval"
                    + (f" (phase {phase})" if phase else " (no such request)")
                ),
                file=sys.stderr,
            )
            return EXIT_FAILED
        started = datetime.now(UTC)
        env = await bus.emit(
            FOCOM_REQUESTS, FocomDecision(name=name, decision=decision, by="o2ctl"), correlation_id=name
        )
        if not wait or decision == "reject":  # a rejection is done once focom has it: nothing runs
            result = {"decided": name, "decision": decision, "message_id": str(env.id)}
            if machine(output):
                emit(result, output)
            else:
                print(printable(f"{decision}d {name}" if decision == "approve" else f"rejected {name}"))
            return EXIT_OK
        try:
            state = await live.follow(
                bus,
                name,
                "create",
                timeout=timeout,
                console=None,
                start=started,
                plain=not machine(output),
                cause=env.id,
            )
        except TimeoutError:
            print(printable(f"o2ctl {decision}: {name} did not settle within {timeout:.0f}s"), file=sys.stderr)
            return EXIT_FAILED
        return _report(state, output)
    finally:
        await bus.close()


def _report(state: live.Follow, output: str) -> int:
    if state.failure is not None:
        failure = {
            "name": state.name,
            "phase": "Failed",
            "reason": state.failure.reason,
            "message": state.failure.error,
            "path": state.failure.path,
        }
        if machine(output):
            emit(failure, output)
        else:
            print(printable(f"{state.name}: refused: {state.failure.error}"), file=sys.stderr)
        return EXIT_FAILED
    fpr = state.fpr
    assert fpr is not None
    rows = [
        {
            "cluster": c.cluster,
            "state": c.state,
            "stage": c.stage,
            "reason": c.reason,
            "message": c.message,
            "kubeconfig_secret": f"{c.cluster}-kubeconfig" if c.state == "fulfilled" else None,
        }
        for c in fpr.children
    ]
    if machine(output):
        emit({"name": fpr.name, "phase": fpr.phase, "message": fpr.message, "clusters": rows}, output)
    else:
        table(
            f"{fpr.name}: {fpr.phase}",
            ("cluster", "state", "reason / message", "kubeconfig Secret"),
            [(r["cluster"], r["state"], r["reason"] or r["message"], r["kubeconfig_secret"]) for r in rows],
        )
        if fpr.phase == "Synced":
            print("next: o2ctl kubeconfig <cluster> --out <file>   (the workload cluster's admin kubeconfig)")
        if fpr.phase == "PendingApproval":
            print(printable(f"waiting for approval: o2ctl approve {fpr.name} (or o2ctl reject {fpr.name})"))
    if fpr.phase == "PendingApproval":
        return EXIT_NOT_READY
    return EXIT_OK if fpr.phase in ("Synced", "Deleted") else EXIT_FAILED


async def status(t: client.Target, name: str | None, *, watch: bool, timeout: float, output: str) -> int:
    bus = await client.open_bus(t)
    try:
        fprs = await client.fpr_records(bus)
        if name is not None and name not in fprs:
            print(printable(f"o2ctl status: no request named {name!r}"), file=sys.stderr)
            return EXIT_USAGE
        if watch and name is not None:
            record = fprs[name]
            state = await live.follow(
                bus,
                name,
                record.get("operation", "create"),
                timeout=timeout,
                console=_console() if not machine(output) and is_terminal() else None,
                plain=not machine(output) and not is_terminal(),
                start=record.get("created_at"),
            )
            return _report(state, output) if state.fpr or state.failure else EXIT_FAILED
        selected = {k: v for k, v in fprs.items() if name is None or k == name}
        if machine(output):
            emit(list(selected.values()), output)
            return EXIT_OK
        rows: list[tuple[object, ...]] = []
        for fpr_name, rec in sorted(selected.items()):
            children = rec.get("children") or {}
            if not children:
                rows.append((fpr_name, rec.get("phase"), "", "", "", rec.get("message")))
            for i, (cluster, child) in enumerate(sorted(children.items())):
                # Plain output repeats the request on every line, so each line stands alone (grep, sort).
                first = i == 0 or not is_terminal()
                rows.append(
                    (
                        fpr_name if first else "",
                        rec.get("phase") if first else "",
                        cluster,
                        child.get("state"),
                        child.get("stage"),
                        child.get("reason") or child.get("message"),
                    )
                )
        table("FOCOM provisioning requests", ("request", "phase", "cluster", "state", "stage", "message"), rows)
        return EXIT_OK
    finally:
        await bus.close()


async def events(t: client.Target, name: str, output: str) -> int:
    """The request's transition history, read back from the FOCOM and O2IMS streams."""
    try:
        own_status = focom_status(name)
    except ValueError:
        print(f"o2ctl events: {name!r} is not a request name", file=sys.stderr)
        return EXIT_USAGE
    bus = await client.open_bus(t)
    rows: list[dict[str, Any]] = []
    try:
        for stream, subject in ((FOCOM.name, own_status), (O2IMS.name, ALL_O2IMS_STATUS)):
            sub = await bus.js.subscribe(subject, ordered_consumer=True, stream=stream)
            try:
                while True:
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except TimeoutError:
                        break
                    try:
                        env = decode(msg.data)
                    except InputError:
                        continue
                    if env.correlation_id != name:
                        continue
                    p = env.payload.model_dump(mode="json", exclude_none=True)
                    rows.append(
                        {
                            "at": env.occurred_at.isoformat(),
                            "subject": msg.subject,
                            "type": env.type,
                            "state": p.get("phase") or p.get("state"),
                            "stage": p.get("stage"),
                            "cluster": p.get("cluster"),
                            "message": p.get("message") or p.get("error"),
                        }
                    )
            finally:
                await sub.unsubscribe()
    finally:
        await bus.close()
    if not rows:
        print(printable(f"o2ctl events: no events for {name!r}"), file=sys.stderr)
        return EXIT_USAGE
    rows.sort(key=lambda r: r["at"])
    if machine(output):
        emit(rows, output)
        return EXIT_OK
    table(
        f"events of {name}",
        ("at", "type", "cluster", "state", "stage", "message"),
        [(r["at"][11:23], r["type"], r["cluster"], r["state"], r["stage"], r["message"]) for r in rows],
    )
    return EXIT_OK


# ── kubeconfig ─────────────────────────────────────────────────────────────────────────


async def kubeconfig(t: client.Target, cluster: str, out: Path | None, output: str) -> int:
    bus = await client.open_bus(t)
    try:
        prs = [r for r in (await client.pr_records(bus)).values() if _cluster_of(r) == cluster]
    finally:
        await bus.close()
    if not prs:
        print(printable(f"o2ctl kubeconfig: no cluster named {cluster!r}"), file=sys.stderr)
        return EXIT_USAGE
    pr = prs[0]
    if pr.get("state") != "fulfilled":
        where = f"{pr.get('state')}" + (f"/{pr['stage']}" if pr.get("stage") else "")
        print(
            printable(
                f"o2ctl kubeconfig: cluster {cluster!r} is {where}, not fulfilled yet; its kubeconfig is "
                "only handed out once the cluster is really up"
            ),
            file=sys.stderr,
        )
        return EXIT_NOT_READY
    if t.kubeconfig is None:
        print("o2ctl kubeconfig: no management kubeconfig known (pass --kubeconfig)", file=sys.stderr)
        return EXIT_USAGE
    from shared.kube import KubeClient

    namespace = _namespace_of(pr) or t.namespace
    try:
        async with await KubeClient.from_kubeconfig(t.kubeconfig) as kube:
            secret = await kube.get("v1", "Secret", f"{cluster}-kubeconfig", namespace)
    except ServiceError as exc:
        print(printable(f"o2ctl kubeconfig: management cluster: {exc}"), file=sys.stderr)
        return EXIT_UNREACHABLE
    value = ((secret or {}).get("data") or {}).get("value")
    if not value:
        print(printable(f"o2ctl kubeconfig: Secret {namespace}/{cluster}-kubeconfig not found"), file=sys.stderr)
        return EXIT_NOT_READY
    text = base64.b64decode(value).decode()
    if out is None:
        sys.stdout.write(text)
        return EXIT_OK
    write_private(out, text)
    if machine(output):
        emit({"cluster": cluster, "kubeconfig": str(out)}, output)
    else:
        print(printable(f"wrote {out} (mode 0600)"))
    return EXIT_OK


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only, replacing whatever ``path`` was.

    The bytes go to a new temporary file beside ``path`` (``O_EXCL|O_NOFOLLOW``: never an existing file,
    never through a symlink), set to 0600 with ``fchmod`` (whatever the umask), synced, then renamed
    over ``path``. A symlink at ``path`` is replaced, not followed; an existing file's mode is not kept.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = -1  # owned by the file object from here on
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _cluster_of(pr: dict[str, Any]) -> str | None:
    spec = pr.get("spec") or {}
    return spec.get("name") or (spec.get("cluster") or {}).get("name") or pr.get("cluster")


def _namespace_of(pr: dict[str, Any]) -> str | None:
    spec = pr.get("spec") or {}
    return spec.get("namespace") or (spec.get("cluster") or {}).get("namespace")


def load_yaml_request(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise client.UsageError(f"{path}: expected a mapping")
    return data
