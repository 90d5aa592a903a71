"""Apps cannot reach each other's containers: shoal's own firewall rules between app networks.

podman creates shoal's networks with ``isolate`` (``containers.ensure_network``), and netavark then
drops traffic between isolated bridges — but those rules live in netavark's shared chains, which
other tools on the host rewrite: measured here, the jump into them from ``FORWARD`` was gone while
two apps ran, and app B reached app A's containers by address. So shoal asserts isolation itself,
idempotently, every time it starts a container on an app's network:

    -I FORWARD -j SHOAL-ISOLATION
    -A SHOAL-ISOLATION -i <bridge> -o <bridge> -j RETURN      (inside the app: allowed)
    -A SHOAL-ISOLATION -i <bridge> -o podman+ -j DROP         (to any other podman network)
    -A SHOAL-ISOLATION -i podman+ -o <bridge> -j DROP         (from any other podman network)

Each rule carries the comment ``shoal:<owner>:<network>``, so removing an app (or a test's cleanup)
deletes exactly its rules, and the chain and its jump go once no rule is left. Traffic to the host's
own addresses (INPUT) is not forwarded traffic; the database forwarder judges that by peer address.

Without ``iptables`` or the right to use it (a rootless engine), ``isolate`` says why and shoal
relies on the engine's own isolation. Docker isolates its bridge networks itself.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

CHAIN = "SHOAL-ISOLATION"
BRIDGES = "podman+"


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "10", *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def tag(owner: str, network: str) -> str:
    return f"shoal:{owner[:12]}:{network}"[:250]


def rules(bridge: str, comment: str) -> list[list[str]]:
    """The three rules of one app network (pure)."""
    mark = ["-m", "comment", "--comment", comment]
    return [["-i", bridge, "-o", bridge, *mark, "-j", "RETURN"],
            ["-i", bridge, "-o", BRIDGES, *mark, "-j", "DROP"],
            ["-i", BRIDGES, "-o", bridge, *mark, "-j", "DROP"]]


def isolate(bridge: str, comment: str) -> str | None:
    """Make sure the network's rules are in force; ``None``, or why they cannot be."""
    if shutil.which("iptables") is None:
        return "iptables is not installed"
    if _iptables("-n", "-L", CHAIN).returncode != 0:
        made = _iptables("-N", CHAIN)
        if made.returncode != 0 and "exists" not in made.stderr:
            return made.stderr.strip() or "iptables -N failed"
    if _iptables("-C", "FORWARD", "-j", CHAIN).returncode != 0:
        jumped = _iptables("-I", "FORWARD", "1", "-j", CHAIN)
        if jumped.returncode != 0:
            return jumped.stderr.strip()
    for rule in rules(bridge, comment):
        if _iptables("-C", CHAIN, *rule).returncode != 0:
            # Same-network RETURN first, so it is never shadowed by another network's DROP.
            where = ["-I", CHAIN, "1"] if rule[-1] == "RETURN" else ["-A", CHAIN]
            added = _iptables(*where, *rule)
            if added.returncode != 0:
                return added.stderr.strip()
    return None


def release(prefix: str) -> int:
    """Delete every rule whose comment starts with ``prefix``; drop the chain once it is empty."""
    if shutil.which("iptables") is None:
        return 0
    listed = _iptables("-S", CHAIN)
    if listed.returncode != 0:
        return 0
    gone = 0
    for line in listed.stdout.splitlines():
        words = shlex.split(line)
        if words[:2] != ["-A", CHAIN] or "--comment" not in words:
            continue
        if words[words.index("--comment") + 1].startswith(prefix):
            gone += _iptables("-D", *words[1:]).returncode == 0
    if not [line for line in _iptables("-S", CHAIN).stdout.splitlines() if line.startswith("-A")]:
        _iptables("-D", "FORWARD", "-j", CHAIN)
        _iptables("-X", CHAIN)
    return gone
