"""curl and gpg without a network: URLs come from the pool's mirror map, keys are dearmored by marker."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from .. import packages as pk
from ..vfs import FsError
from . import Ctx, Shim, ShimExit, no_file_args

_RELEASE_KEY = re.compile(r"https://pkgs\.k8s\.io/core:/stable:/v1\.(\d+)/deb/Release\.key")
_ALWAYS_KNOWN_HOSTS = {"pkgs.k8s.io", "dl.k8s.io", "github.com", "objects.githubusercontent.com"}


def fake_release_key(minor: int) -> bytes:
    return (
        f"{pk.ARMORED_PREFIX.decode()}\nComment: sandbox key for pkgs.k8s.io v1.{minor}\n\n"
        "mQINBGMHoXcBEADCYuEPw3rKoPa6wqdU0B5MEvbUd1bIE4Cc3cv0K1NN0d2k8b3n\n"
        "-----END PGP PUBLIC KEY BLOCK-----\n"
    ).encode()


def mirror_lookup(mirror: Mapping[str, bytes], url: str) -> bytes | None:
    if url in mirror:
        return mirror[url]
    m = _RELEASE_KEY.fullmatch(url)
    if m:
        return fake_release_key(int(m.group(1)))
    return None


def curl(ctx: Ctx) -> int:
    args = list(ctx.args)
    fail = silent = show_error = False
    output: str | None = None
    url = ""
    protocols: str | None = None
    while args:
        arg = args.pop(0)
        if arg in ("-o", "--output") and args:
            output = args.pop(0)
        elif arg in ("--proto", "--proto-redir") and args:
            # "=https": only https, as curl's --proto takes it (the mirror never redirects).
            value = args.pop(0)
            protocols = value if arg == "--proto" else protocols
        elif arg in (
            "--retry",
            "--connect-timeout",
            "-m",
            "--max-time",
            "-H",
            "--header",
            "-A",
            "--retry-delay",
            "--retry-max-time",
            "-u",
            "--user",
        ):
            if args:
                args.pop(0)
        elif arg.startswith("--"):
            fail = fail or arg == "--fail"
            silent = silent or arg == "--silent"
            show_error = show_error or arg == "--show-error"
        elif arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            fail, silent, show_error = fail or "f" in letters, silent or "s" in letters, show_error or "S" in letters
            if "o" in letters and args:
                output = args.pop(0)
        else:
            url = arg
    quiet_errors = silent and not show_error
    if not url:
        raise ShimExit(2, "" if quiet_errors else "curl: no URL specified!")
    scheme = urlsplit(url).scheme
    if protocols is not None and protocols.startswith("=") and scheme not in protocols[1:].split(","):
        raise ShimExit(1, "" if quiet_errors else f'curl: (1) Protocol "{scheme}" disabled')
    data = mirror_lookup(ctx.host.mirror, url)
    host = urlsplit(url).hostname or ""
    if data is None:
        known = _ALWAYS_KNOWN_HOSTS | {urlsplit(u).hostname or "" for u in ctx.host.mirror}
        if host not in known:
            raise ShimExit(6, "" if quiet_errors else f"curl: (6) Could not resolve host: {host}")
        if fail:
            raise ShimExit(22, "" if quiet_errors else "curl: (22) The requested URL returned error: 404")
        data = b"404 page not found\n"
    if output is None:
        ctx.out.write(data)
        return 0
    try:
        ctx.mark(ctx.fs.write(ctx.path(output), data))
    except FsError as exc:
        raise ShimExit(
            23,
            ""
            if quiet_errors
            else f"Warning: Failed to open the file {output}: {exc.strerror}\n"
            "curl: (23) Failure writing output to destination",
        ) from None
    return 0


def gpg(ctx: Ctx) -> int:
    args = list(ctx.args)
    dearmor = yes = False
    output: str | None = None
    inputs: list[str] = []
    while args:
        arg = args.pop(0)
        if arg in ("--dearmor", "--dearmour"):
            dearmor = True
        elif arg == "--yes":
            yes = True
        elif arg in ("-o", "--output") and args:
            output = args.pop(0)
        elif arg.startswith("--output="):
            output = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            continue
        else:
            inputs.append(arg)
    if not dearmor:
        raise ShimExit(2, "gpg: the sandbox gpg only supports --dearmor")
    data = ctx.stdin if not inputs or inputs[0] == "-" else ctx.read_file(inputs[0])
    if not data.lstrip().startswith(pk.ARMORED_PREFIX):
        raise ShimExit(2, "gpg: no valid OpenPGP data found.")
    keyring = pk.KEYRING_MAGIC + hashlib.sha256(data.strip()).hexdigest().encode() + b"\n"
    if output is None or output == "-":
        ctx.out.write(keyring)
        return 0
    vpath = ctx.path(output)
    if ctx.fs.exists(vpath) and not yes:
        raise ShimExit(
            2,
            f"File '{output}' exists. Overwrite? (y/N) gpg: signal Inappropriate ioctl for device "
            "caught ... exiting\ngpg: cannot open '/dev/tty': No such device or address",
        )
    try:
        ctx.mark(ctx.fs.write(vpath, keyring))
    except FsError as exc:
        raise ShimExit(
            2, f"gpg: can't create '{output}': {exc.strerror}\ngpg: dearmoring failed: {exc.strerror}"
        ) from None
    return 0


def _gpg_reads_stdin(args: list[str]) -> bool:
    operands: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-o", "--output"):
            skip = True
        elif not arg.startswith("-") or arg == "-":
            operands.append(arg)
    return no_file_args(operands)


SHIMS: dict[str, Shim] = {
    "curl": Shim(curl, "/usr/bin/curl", package="curl"),
    "gpg": Shim(gpg, "/usr/bin/gpg", package="gpg", reads_stdin=_gpg_reads_stdin),
}
