"""Run one SSH command line against a sandbox host's state dir; the ``ForceCommand`` behind a real sshd.

``python -m sandbox.hosts.exec --state-dir DIR`` reads ``SSH_ORIGINAL_COMMAND``, interprets it with the
same shell and shims as the asyncssh hosts, records it in ``DIR/state.json`` (source ``exec``) and exits
with its status. Standard library only: it may run under a bare system Python. The login user is the
real user sshd started us as (root or not), so the same permission rules apply. The BYOH agent
simulator is not available here (agent units fail with a clear journal reason).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import pwd
import sys
from collections.abc import Iterator
from pathlib import Path

from .host import SandboxHost
from .seed import init_host_dir

LOCK_FILE = ".lock"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Several sshd sessions may run commands on one host at once; one state.json writer at a time.
    with open(directory / LOCK_FILE, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


async def _read_stdin() -> bytes:
    return await asyncio.to_thread(sys.stdin.buffer.read)


async def run(directory: Path, command: str) -> int:
    user = pwd.getpwuid(os.getuid()).pw_name
    host = SandboxHost.load(directory, user=user)
    result = await host.run_command(command, stdin=_read_stdin, env=dict(os.environ), source="exec")
    await asyncio.to_thread(host.save_sync)
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(result.stderr)
    sys.stderr.buffer.flush()
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.hosts.exec", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True, help="the host's state directory")
    parser.add_argument("--init", action="store_true", help="create the state dir first (host id/name/ip below)")
    parser.add_argument("--host-id", default="host-001")
    parser.add_argument("--host-name", default="node-001")
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--user", default=None, help="login user recorded at --init (default: the current user)")
    args = parser.parse_args(argv)
    directory: Path = args.state_dir
    if args.init:
        user = args.user or pwd.getpwuid(os.getuid()).pw_name
        init_host_dir(directory, host_id=args.host_id, host_name=args.host_name, ip=args.ip, user=user)
        return 0
    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    if command is None:
        sys.stderr.write("This sandbox host accepts exec requests only (no interactive shell).\n")
        return 1
    with _locked(directory):
        return asyncio.run(run(directory, command))


if __name__ == "__main__":
    sys.exit(main())
