"""The simulated kernel: which modules exist, which sysctls exist (some only with a module loaded), swap."""

from __future__ import annotations

from .facts import HostFacts
from .state import HostState

# module -> modules it pulls in (modprobe loads dependencies first).
KNOWN_MODULES: dict[str, tuple[str, ...]] = {
    "overlay": (),
    "br_netfilter": ("bridge",),
    "bridge": ("stp", "llc"),
    "stp": ("llc",),
    "llc": (),
    "ip_vs": ("nf_conntrack",),
    "ip_vs_rr": ("ip_vs",),
    "ip_vs_wrr": ("ip_vs",),
    "ip_vs_sh": ("ip_vs",),
    "nf_conntrack": (),
    "ip_tables": ("x_tables",),
    "x_tables": (),
    "iptable_nat": ("ip_tables",),
    "iptable_filter": ("ip_tables",),
    "xt_conntrack": ("nf_conntrack",),
    "vxlan": (),
    "ipip": (),
    "autofs4": (),
}

#: Loaded at boot on a stock host.
BOOT_MODULES = frozenset({"ip_tables", "x_tables", "autofs4"})

MODULE_SIZES: dict[str, int] = {"overlay": 151552, "br_netfilter": 32768, "bridge": 311296}

BASE_SYSCTLS: dict[str, str] = {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.forwarding": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv4.conf.all.rp_filter": "2",
    "vm.swappiness": "60",
    "vm.overcommit_memory": "0",
    "kernel.panic": "0",
    "kernel.panic_on_oops": "1",
    "fs.inotify.max_user_instances": "128",
    "fs.inotify.max_user_watches": "65536",
    "net.core.somaxconn": "4096",
}

#: These appear under /proc/sys only while br_netfilter is loaded.
BRIDGE_SYSCTLS: dict[str, str] = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.bridge.bridge-nf-call-arptables": "1",
}

SWAP_FILE = "/swap.img"


def initial_sysctls() -> dict[str, str]:
    return dict(BASE_SYSCTLS)


def sysctl_visible(state: HostState, key: str) -> bool:
    if key in BRIDGE_SYSCTLS:
        return "br_netfilter" in state.modules_loaded
    return key in state.sysctls


def sysctl_get(state: HostState, key: str) -> str | None:
    if not sysctl_visible(state, key):
        return None
    return state.sysctls.get(key, BRIDGE_SYSCTLS.get(key))


def sysctl_keys(state: HostState) -> list[str]:
    keys = set(state.sysctls) - set(BRIDGE_SYSCTLS)
    if "br_netfilter" in state.modules_loaded:
        keys |= set(BRIDGE_SYSCTLS)
    return sorted(keys)


def normalize_key(key: str) -> str:
    """sysctl accepts both ``net.ipv4.ip_forward`` and ``net/ipv4/ip_forward``."""
    return key.strip().replace("/", ".")


def load_module(state: HostState, name: str) -> list[str]:
    """Load a module and its dependencies; returns what was newly loaded."""
    loaded: list[str] = []
    for dep in KNOWN_MODULES.get(name, ()):
        loaded += load_module(state, dep)
    if name not in state.modules_loaded:
        state.modules_loaded.add(name)
        if name == "br_netfilter":
            for key, value in BRIDGE_SYSCTLS.items():
                state.sysctls[key] = value
        loaded.append(name)
    return loaded


def unload_module(state: HostState, name: str) -> bool:
    if name not in state.modules_loaded:
        return False
    state.modules_loaded.discard(name)
    if name == "br_netfilter":
        for key in BRIDGE_SYSCTLS:
            state.sysctls.pop(key, None)
    return True


def modules_text(state: HostState) -> str:
    """The content of /proc/modules."""
    lines = []
    for name in sorted(state.modules_loaded):
        users = [m for m in state.modules_loaded if name in KNOWN_MODULES.get(m, ())]
        used_by = ",".join(sorted(users)) + "," if users else "-"
        lines.append(f"{name} {MODULE_SIZES.get(name, 16384)} {len(users)} {used_by} Live 0x0000000000000000\n")
    return "".join(lines)


def swaps_text(state: HostState, facts: HostFacts) -> str:
    lines = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"]
    for path in state.swap_active:
        lines.append(f"{path:<40}file\t\t{facts.swap_bytes // 1024}\t\t0\t\t-2\n")
    return "".join(lines)


def meminfo_text(state: HostState, facts: HostFacts) -> str:
    total_kb = facts.memory_bytes // 1024
    swap_kb = facts.swap_bytes // 1024 if state.swap_active else 0
    return (
        f"MemTotal:       {total_kb} kB\n"
        f"MemFree:        {total_kb * 3 // 4} kB\n"
        f"MemAvailable:   {total_kb * 7 // 8} kB\n"
        f"SwapTotal:      {swap_kb} kB\n"
        f"SwapFree:       {swap_kb} kB\n"
    )
