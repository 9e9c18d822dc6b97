"""Network namespaces that stand in for separate hosts, for ``bench/hosts.py``.

One namespace holds the broker; each worker "host" gets a namespace of its
own, joined to the broker's by its own veth pair (both ends created straight
inside the two namespaces, so nothing is added to the machine's own network).
The broker listens on one service address on its ``lo`` that every host
reaches through its link: a Redis Cluster announces one address per node, so
every host must see the same one.

Addresses come from a private /16 that no address or route of the machine
overlaps. The namespaces are named ``offload-bench-<tag>-…`` so that a run
killed with SIGKILL leaves names anyone can recognise and delete
(``ip netns del``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field

PREFIX = "offload-bench"
CLONE_NEWNET = 0x40000000
CANDIDATES = [ipaddress.IPv4Network(f"10.{b}.0.0/16") for b in range(231, 251)]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def in_ns(ns: str, argv: list[str]) -> list[str]:
    """``argv`` run inside ``ns``: ``ip netns exec`` execs it, so the process
    id is the command's own (what RSS and CPU sampling read)."""
    return ["ip", "netns", "exec", ns, *argv]


def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the machine's own namespace has an address or route in."""
    found: list[ipaddress.IPv4Network] = []
    for what in ("addr", "route"):
        out = subprocess.run(["ip", "-4", "-j", what], check=True, capture_output=True, text=True)
        for item in json.loads(out.stdout or "[]"):
            for addr in item.get("addr_info", []):
                found.append(ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", False))
            dst = item.get("dst")
            if dst and dst != "default":
                found.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", False))
    return found


def free_range() -> ipaddress.IPv4Network:
    used = used_networks()
    for net in CANDIDATES:
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("every candidate 10.x.0.0/16 overlaps a network of this machine")


@dataclass
class Net:
    """The broker namespace and ``hosts`` host namespaces, made by ``create``
    and removed, with every process still inside them, by ``destroy``."""

    hosts: int
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    base: ipaddress.IPv4Network = field(default_factory=free_range)
    made: list[str] = field(default_factory=list)
    _home_fd: int | None = None

    @property
    def broker(self) -> str:
        return f"{PREFIX}-{self.tag}-broker"

    def host(self, i: int) -> str:
        return f"{PREFIX}-{self.tag}-h{i}"

    @property
    def host_names(self) -> list[str]:
        return [self.host(i) for i in range(1, self.hosts + 1)]

    @property
    def service_ip(self) -> str:
        return str(self.base.network_address + 1)

    def link_ips(self, i: int) -> tuple[str, str]:
        """Broker side and host side of host ``i``'s /24."""
        subnet = int(self.base.network_address) + (i << 8)
        return str(ipaddress.IPv4Address(subnet + 1)), str(ipaddress.IPv4Address(subnet + 2))

    def create(self) -> None:
        self._add(self.broker)
        ip("-n", self.broker, "addr", "add", f"{self.service_ip}/32", "dev", "lo")
        for i in range(1, self.hosts + 1):
            self._link(i)

    def _add(self, ns: str) -> None:
        ip("netns", "add", ns)
        self.made.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")

    def _link(self, i: int) -> None:
        host = self.host(i)
        self._add(host)
        broker_end, host_end = f"ob{self.tag}b{i}", f"ob{self.tag}h{i}"
        ip("link", "add", broker_end, "netns", self.broker, "type", "veth",
           "peer", "name", host_end, "netns", host)  # fmt: skip
        broker_ip, host_ip = self.link_ips(i)
        ip("-n", self.broker, "addr", "add", f"{broker_ip}/24", "dev", broker_end)
        ip("-n", host, "addr", "add", f"{host_ip}/24", "dev", host_end)
        ip("-n", self.broker, "link", "set", broker_end, "up")
        ip("-n", host, "link", "set", host_end, "up")
        ip("-n", host, "route", "add", f"{self.service_ip}/32", "via", broker_ip)

    def enter_broker(self) -> None:
        """Moves this thread (and the threads and children it makes after) into
        the broker's namespace, where the service address is local: the
        enqueuer, the sampler's count query and the checker are clients there."""
        self._home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        _setns(f"/run/netns/{self.broker}")

    def destroy(self) -> None:
        """Idempotent; safe from an exit handler after a partial ``create``."""
        if self._home_fd is not None:
            _setns_fd(self._home_fd)
            os.close(self._home_fd)
            self._home_fd = None
        for ns in reversed(self.made):
            kill_all(ns)
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("netns", "del", ns)
        self.made.clear()


def kill_all(ns: str) -> None:
    """Every process in a namespace this run made is one this run started."""
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    for pid in map(int, out.stdout.split()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _setns_fd(fd)
    finally:
        os.close(fd)


def _setns_fd(fd: int) -> None:
    # os.setns arrives in Python 3.12; the project supports 3.11.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
