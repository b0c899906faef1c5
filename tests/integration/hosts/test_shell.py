"""The sandbox command language: quoting, operators, redirections, expansion, and what it refuses."""

from __future__ import annotations

import shlex

import pytest

from tests.integration.hosts.helpers import run

CASES = [
    # (command line, exit status, stdout, stderr)
    ("echo 'a  b' \"c  d\" e\\ f", 0, "a  b c  d e f\n", ""),
    ("X='$HOME'; echo $X \"$X\" '$X'", 0, "$HOME $HOME $X\n", ""),
    ("A=1 B=two; echo ${A}-$B-${C:-dflt}-${A:+set}", 0, "1-two-dflt-set\n", ""),
    ("V='a   b'; printf '[%s]' $V; printf '[%s]\\n' \"$V\"", 0, "[a][b][a   b]\n", ""),
    ("true && echo yes || echo no; false && echo yes || echo no", 0, "yes\nno\n", ""),
    ("false; echo $?; ! false; echo $?", 0, "1\n0\n", ""),
    ("echo one | tr a-z A-Z | sed 's/O/0/'", 0, "0NE\n", ""),
    ("echo out; echo err >&2", 0, "out\n", "err\n"),
    ("ls /nonexistent 2>/dev/null; echo $?", 0, "2\n", ""),
    ("ls /nonexistent 2>&1 | grep -c cannot", 0, "1\n", ""),
    ("echo a > /tmp/f; echo b >> /tmp/f; cat < /tmp/f", 0, "a\nb\n", ""),
    ("cat <<'EOF' | grep -v skip\nline $HOME\nskip me\nEOF", 0, "line $HOME\n", ""),
    ("cat <<EOF\nhome=$HOME\nEOF", 0, "home=/root\n", ""),
    ("sh -c 'echo $0 $1 $#' name arg", 0, "name arg 1\n", ""),
    ('bash -c "exit 7"; echo $?', 0, "7\n", ""),
    ("set -e; false; echo unreachable", 1, "", ""),
    ("set -e; false || true; echo reached", 0, "reached\n", ""),
    ("set -euo pipefail; false | true; echo unreachable", 1, "", ""),
    ("set -u; echo $NOPE", 1, "", "bash: NOPE: unbound variable\n"),
    ("exit 3; echo never", 3, "", ""),
    ("if test -d /etc; then echo dir; else echo no; fi", 0, "dir\n", ""),
    ("if [ -f /nope ]; then echo a; elif [ 1 -lt 2 ]; then echo b; fi", 0, "b\n", ""),
    ("{ echo a; echo b; } > /tmp/g && cat /tmp/g", 0, "a\nb\n", ""),
    ("(cd /etc && pwd); pwd", 0, "/etc\n/root\n", ""),
    ("command -v apt-get; command -v kubeadm || echo missing; command -v cd", 0, "/usr/bin/apt-get\nmissing\ncd\n", ""),
    ("nosuchcmd --flag", 127, "", "bash: nosuchcmd: command not found\n"),
    ("/usr/bin/nosuch", 127, "", "bash: /usr/bin/nosuch: No such file or directory\n"),
    (
        "echo $(date)",
        2,
        "",
        "bash: command substitution $(...) is not supported by the sandbox host shell (see docs/sandbox-hosts.md)\n",
    ),
    (
        "echo `date`",
        2,
        "",
        "bash: command substitution `...` is not supported by the sandbox host shell (see docs/sandbox-hosts.md)\n",
    ),
    ("sleep 1 &", 2, "", "bash: background jobs (`&') are not supported by the sandbox host shell\n"),
    ("for i in 1 2; do echo $i; done", 2, "", "bash: `for' is not supported by the sandbox host shell\n"),
    ("echo 'unterminated", 2, "", "bash: unexpected EOF while looking for matching `''\n"),
    ("systemctl is-active nosuch", 3, "inactive\n", ""),
    ("grep -q nomatch /etc/hostname", 1, "", ""),
    ("grep -q x /nonexistent", 2, "", "grep: /nonexistent: No such file or directory\n"),
    ("ls /etc/sysctl.d/*.conf 2>/dev/null || echo none", 0, "none\n", ""),
    ("touch /tmp/a.conf /tmp/b.conf; echo /tmp/*.conf '/tmp/*.conf'", 0, "/tmp/a.conf /tmp/b.conf /tmp/*.conf\n", ""),
    ("printf '%s=%d\\n' a 1 b 2", 0, "a=1\nb=2\n", ""),
    ("echo -n x; echo -e 'y\\tz'", 0, "xy\tz\n", ""),
    ("test 2 -gt 10 || [ abc = abc ] && echo ok", 0, "ok\n", ""),
    (
        "sed -n '/^ID=/p' /etc/os-release; sed -E 's/(a+)(b)/\\2\\1/g' <<'EOF'\naab ab\nEOF",
        0,
        "ID=ubuntu\nbaa ba\n",
        "",
    ),
    ("echo 'x y z' | cut -d ' ' -f 2; echo 'k=v' | grep -oE '[a-z]+$'", 0, "y\nv\n", ""),
    (
        "head -n 1 /etc/fstab; tail -n 1 /etc/fstab | grep -c swap",
        0,
        "# /etc/fstab: static file system information.\n1\n",
        "",
    ),
    ("sudo -n -E env | grep -c '^SUDO_USER='; env -i FOO=1 env", 0, "1\nFOO=1\n", ""),
    ("timeout 5 true; echo $?", 0, "0\n", ""),
]


@pytest.mark.parametrize(("command", "status", "stdout", "stderr"), CASES, ids=range(len(CASES)))
async def test_command_language(sandbox_hosts, command, status, stdout, stderr):
    pool = await sandbox_hosts(count=1)
    result = await run(pool, command)
    assert (result.exit_status, result.stdout, result.stderr) == (status, stdout, stderr)


async def test_shlex_quoted_values_round_trip(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    nasty = ["it's", 'say "hi"', "$HOME `x` $(y)", "a\\b", "semi;colon && or || pipe |", "tab\there", ""]
    result = await run(pool, "printf '<%s>\\n' " + " ".join(shlex.quote(v) for v in nasty))
    assert result.exit_status == 0, result.stderr
    assert result.stdout == "".join(f"<{v}>\n" for v in nasty)


async def test_stdin_is_passed_through(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    result = await run(pool, "sudo -n tee /etc/motd | sha256sum", input="hello\n")
    assert result.stdout.startswith("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  -")
    script = "set -e\nmkdir -p /opt/demo\necho from-script > /opt/demo/file\ncat /opt/demo/file\n"
    result = await run(pool, "sudo -n bash -s", input=script)
    assert (result.exit_status, result.stdout) == (0, "from-script\n")


async def test_kubeadm_reset_clears_etc_kubernetes(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    setup = (
        "mkdir -p /etc/apt/keyrings && curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.30/deb/Release.key | "
        "gpg --dearmor -o /etc/apt/keyrings/k.gpg && echo 'deb [signed-by=/etc/apt/keyrings/k.gpg] "
        "https://pkgs.k8s.io/core:/stable:/v1.30/deb/ /' > /etc/apt/sources.list.d/k.list && "
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y kubeadm=1.30.2-1.1 && "
        "mkdir -p /etc/kubernetes/manifests && echo x > /etc/kubernetes/admin.conf"
    )
    assert (await run(pool, setup)).exit_status == 0
    refused = await run(pool, "kubeadm reset")
    assert refused.exit_status == 1 and "won't proceed" in refused.stderr
    assert (await run(pool, "kubeadm reset -f && ls -A /etc/kubernetes")).stdout.endswith("/etc/kubernetes/pki]\n")
    state = pool.host("host-001").state
    assert state.kubeadm == "reset" and state.log[-1].changed is True
    assert state.kubeadm_runs == [{"action": "reset", "source": "ssh", "ok": True, "detail": "reset -f"}]
    assert (await run(pool, "kubeadm reset -f")).exit_status == 0
    assert state.log[-1].changed is False
