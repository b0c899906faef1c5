"""Shell builtins of the sandbox shell: control (exit, set, cd, ...) and the command runners (sudo, sh -c, env)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from .shell import Shell
from .shellio import SECURE_PATH, ExitShell, Io, Options, read_input
from .vfs import FsError, normalize

BuiltinFn = Callable[[Shell, list[str], Io], Awaitable[int]]
_SUDO_KEEP = ("TERM", "LANG", "LANGUAGE", "DISPLAY", "COLORS", "XAUTHORITY")


def _err(io: Io, text: str) -> None:
    io.err.write((text + "\n").encode())


def _out(io: Io, text: str) -> None:
    io.out.write((text + "\n").encode())


async def b_true(sh: Shell, argv: list[str], io: Io) -> int:
    return 0


async def b_false(sh: Shell, argv: list[str], io: Io) -> int:
    return 1


async def b_exit(sh: Shell, argv: list[str], io: Io) -> int:
    if len(argv) > 1 and not argv[1].lstrip("-").isdigit():
        _err(io, f"bash: exit: {argv[1]}: numeric argument required")
        raise ExitShell(2)
    raise ExitShell(int(argv[1]) % 256 if len(argv) > 1 else sh.last_status)


def apply_set_flags(options: Options, args: list[str]) -> str | None:
    """Apply ``-e``/``-u``/``-x``/``-o pipefail`` style flags; returns an error text for unknown ones."""
    names = {"e": "errexit", "u": "nounset", "x": "xtrace"}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-o", "+o"):
            if i + 1 >= len(args):
                return None
            opt = args[i + 1]
            if opt not in ("errexit", "nounset", "pipefail", "xtrace"):
                return f"{opt}: invalid option name"
            setattr(options, opt, arg == "-o")
            i += 2
            continue
        if arg[:1] in "-+" and len(arg) > 1:
            for flag in arg[1:]:
                if flag == "o":
                    opt = args[i + 1] if i + 1 < len(args) else ""
                    if opt not in ("errexit", "nounset", "pipefail", "xtrace"):
                        return f"{opt}: invalid option name"
                    setattr(options, opt, arg[0] == "-")
                    i += 1
                elif flag in names:
                    setattr(options, names[flag], arg[0] == "-")
                elif flag not in "hBCfmnv":
                    return f"{arg[0]}{flag}: invalid option"
        i += 1
    return None


async def b_set(sh: Shell, argv: list[str], io: Io) -> int:
    error = apply_set_flags(sh.options, argv[1:])
    if error:
        _err(io, f"bash: set: {error}")
        return 2
    return 0


async def b_export(sh: Shell, argv: list[str], io: Io) -> int:
    for arg in argv[1:]:
        if arg.startswith("-"):
            continue
        name, eq, value = arg.partition("=")
        if eq:
            sh.vars[name] = value
        sh.exported.add(name)
    return 0


async def b_unset(sh: Shell, argv: list[str], io: Io) -> int:
    for name in argv[1:]:
        if not name.startswith("-"):
            sh.vars.pop(name, None)
            sh.exported.discard(name)
    return 0


async def b_cd(sh: Shell, argv: list[str], io: Io) -> int:
    target = argv[1] if len(argv) > 1 else sh.home()
    vpath = normalize(target, sh.cwd)
    if not sh.fs.is_dir(vpath):
        reason = "Not a directory" if sh.fs.exists(vpath) else "No such file or directory"
        _err(io, f"bash: cd: {target}: {reason}")
        return 1
    sh.cwd = vpath
    sh.vars["PWD"] = vpath
    return 0


async def b_pwd(sh: Shell, argv: list[str], io: Io) -> int:
    _out(io, sh.cwd)
    return 0


def _describe(sh: Shell, name: str) -> str | None:
    if name in BUILTINS:
        return name
    _shim, path, code, _ = sh.resolve(name)
    return None if code else path


async def b_command(sh: Shell, argv: list[str], io: Io) -> int:
    args = argv[1:]
    if args and args[0] in ("-v", "-V"):
        status = 0
        for name in args[1:]:
            found = _describe(sh, name)
            if found is None:
                status = 1
                if args[0] == "-V":
                    _err(io, f"bash: command: {name}: not found")
            else:
                _out(io, found if args[0] == "-v" else f"{name} is {found}")
        return status
    if args and args[0] == "-p":
        args = args[1:]
    return await sh.run_argv(args, io) if args else 0


async def b_type(sh: Shell, argv: list[str], io: Io) -> int:
    status = 0
    for name in argv[1:]:
        if name.startswith("-"):
            continue
        found = _describe(sh, name)
        if found is None:
            _err(io, f"bash: type: {name}: not found")
            status = 1
        elif found == name and name in BUILTINS:
            _out(io, f"{name} is a shell builtin")
        else:
            _out(io, f"{name} is {found}")
    return status


async def b_sudo(sh: Shell, argv: list[str], io: Io) -> int:
    args = argv[1:]
    preserve = False
    target = "root"
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt == "--":
            break
        if opt in ("-u", "--user"):
            target = args.pop(0) if args else ""
        elif opt.startswith("--preserve-env") or opt == "-E":
            preserve = True
        elif opt in ("-n", "--non-interactive", "-H", "-S", "-k", "-i", "-s", "--login", "-nE", "-En"):
            preserve = preserve or "E" in opt
        else:
            _err(io, f"sudo: invalid option -- '{opt.lstrip('-')[:1]}'")
            return 1
    if target not in {"root", sh.host.login_user}:
        _err(io, f"sudo: unknown user {target}")
        return 1
    if sh.user not in {"root", sh.host.login_user}:
        _err(io, f"{sh.user} is not in the sudoers file.  This incident will be reported.")
        return 1
    current = sh.env()
    keep = {k: v for k, v in current.items() if k in _SUDO_KEEP or k.startswith("LC_")}
    env = dict(current) if preserve else keep
    home = "/root" if target == "root" else f"/home/{target}"
    env.update(
        PATH=SECURE_PATH,
        HOME=home,
        USER=target,
        LOGNAME=target,
        SHELL="/bin/bash",
        SUDO_USER=sh.user,
        SUDO_COMMAND=" ".join(args),
    )
    while args and "=" in args[0] and args[0].split("=", 1)[0].isidentifier():
        name, _, value = args.pop(0).partition("=")
        env[name] = value
    if not args:
        _err(io, "usage: sudo [-nE] [-u user] [VAR=value] command")
        return 1
    return await sh.child(user=target, env=env).run_argv(args, io)


async def b_shell(sh: Shell, argv: list[str], io: Io) -> int:
    options = Options()
    args = argv[1:]
    script: str | None = None
    from_stdin = False
    while args and args[0].startswith(("-", "+")) and args[0] not in ("-", "--"):
        opt = args.pop(0)
        if opt in ("--noprofile", "--norc", "--login", "-l", "-i"):
            continue
        if opt in ("-o", "+o"):
            apply_set_flags(options, [opt, args.pop(0) if args else ""])
            continue
        for flag in opt[1:]:
            if flag == "c":
                if not args:
                    _err(io, f"{argv[0]}: -c: option requires an argument")
                    return 2
                script = args.pop(0)
            elif flag == "s":
                from_stdin = True
            elif flag in "euxo":
                apply_set_flags(options, [opt[0] + flag])
    if args and args[0] == "--":
        args.pop(0)
    if script is not None:
        positional = args or [argv[0]]
    elif args and not from_stdin:
        path = normalize(args[0], sh.cwd)
        try:
            script = sh.fs.read(path).decode("utf-8", "replace")
        except FsError as exc:
            _err(io, f"{argv[0]}: {args[0]}: {exc.strerror}")
            return 127
        positional = args
    else:
        script = (await read_input(io.stdin)).decode("utf-8", "replace")
        io = Io(b"", io.out, io.err)
        positional = [argv[0], *args]
    child = sh.child(positional=positional, options=options)
    return await child.run_script(script, io)


async def b_env(sh: Shell, argv: list[str], io: Io) -> int:
    args = argv[1:]
    env = sh.env()
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-i", "--ignore-environment", "-"):
            env = {}
        elif opt == "-u" and args:
            env.pop(args.pop(0), None)
    while args and "=" in args[0]:
        name, _, value = args.pop(0).partition("=")
        env[name] = value
    if not args:
        for name in sorted(env):
            _out(io, f"{name}={env[name]}")
        return 0
    return await sh.child(env=env).run_argv(args, io)


async def b_exec(sh: Shell, argv: list[str], io: Io) -> int:
    if len(argv) == 1:
        return 0
    raise ExitShell(await sh.run_argv(argv[1:], io))


async def b_nohup(sh: Shell, argv: list[str], io: Io) -> int:
    return await sh.run_argv(argv[1:], io) if len(argv) > 1 else 125


def parse_duration(text: str) -> float | None:
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    scale = units.get(text[-1:])
    number = text[:-1] if scale else text
    try:
        return float(number) * (scale or 1.0)
    except ValueError:
        return None


async def b_timeout(sh: Shell, argv: list[str], io: Io) -> int:
    args = argv[1:]
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-s", "-k", "--signal", "--kill-after") and args:
            args.pop(0)
    duration = parse_duration(args[0]) if args else None
    if duration is None or len(args) < 2:
        _err(io, "timeout: invalid time interval" if args else "timeout: missing operand")
        return 125
    try:
        return await asyncio.wait_for(sh.run_argv(args[1:], io), duration if duration > 0 else None)
    except TimeoutError:
        return 124


async def b_sleep(sh: Shell, argv: list[str], io: Io) -> int:
    total = 0.0
    for arg in argv[1:]:
        seconds = parse_duration(arg)
        if seconds is None:
            _err(io, f"sleep: invalid time interval '{arg}'")
            return 1
        total += seconds
    if sh.hangup is None:
        await asyncio.sleep(total)
        return 0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sh.hangup.wait(), total)
    return 0


async def b_source(sh: Shell, argv: list[str], io: Io) -> int:
    if len(argv) < 2:
        _err(io, f"bash: {argv[0]}: filename argument required")
        return 2
    try:
        script = sh.fs.read(normalize(argv[1], sh.cwd)).decode("utf-8", "replace")
    except FsError as exc:
        _err(io, f"bash: {argv[1]}: {exc.strerror}")
        return 1
    return await sh.run_script(script, io)


BUILTINS: dict[str, BuiltinFn] = {
    ":": b_true,
    "true": b_true,
    "false": b_false,
    "exit": b_exit,
    "set": b_set,
    "export": b_export,
    "unset": b_unset,
    "cd": b_cd,
    "pwd": b_pwd,
    "command": b_command,
    "type": b_type,
    "sudo": b_sudo,
    "sh": b_shell,
    "bash": b_shell,
    "env": b_env,
    "exec": b_exec,
    "nohup": b_nohup,
    "timeout": b_timeout,
    "sleep": b_sleep,
    "source": b_source,
    ".": b_source,
}
