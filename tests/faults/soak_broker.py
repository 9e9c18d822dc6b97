"""The soak's own broker and its faults (scenarios 6-8, 10, 11).

A throwaway redis-server (AOF, ``appendfsync always``: the durable setting)
or PostgreSQL cluster, with a ``FaultProxy`` between it and the workers. The
producer and the checker reach the broker directly, so a cut or a slow proxy
strands the workers only, as a partition between them and the broker would;
restarts and crashes reach everyone, the producer included.

Outages last past a lease (``OUTAGE`` leases), so a worker's lease lapses in
each and it must give its run up first (the self-fence) for I2 to hold.
Clock skew (12) stays out: it needs ``faketime`` around one worker, and is a
scenario test of its own (``test_s12_…``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tests.faults.ledger import Ledger
from tests.faults.proxy import FaultProxy, through
from tests.faults.servers import PgBroker, RedisBroker

OUTAGE = 2.5
"""Leases an outage lasts: past the lease, with room for the recovery loop."""
SLOW = 0.3
"""Seconds each chunk waits in the slow proxy, each way (as ``test_s11``)."""

KINDS = {
    "redis": ["restart", "crash", "cut", "slow"],
    "postgres": ["restart", "crash", "immediate", "cut", "slow"],
}
"""Broker faults each backend draws from: ``immediate`` is PostgreSQL's
immediate shutdown held past a lease (8); ``crash`` on PostgreSQL is the same
shutdown started again at once, on Redis a ``kill -9``."""


@dataclass
class SoakBroker:
    name: str
    server: RedisBroker | PgBroker
    proxy: FaultProxy
    url: str
    """The producer's and the checker's URL: straight to the broker."""

    @classmethod
    def start(cls, name: str) -> SoakBroker:
        if name not in KINDS:
            raise SystemExit(f"--broker-faults needs a broker of the soak's own: {sorted(KINDS)}")
        server: RedisBroker | PgBroker
        if name == "redis":
            server = RedisBroker(aof=True).start()
            url, port = server.url(), server.port
        else:
            server = PgBroker()
            url, port = server.cluster.url("soak"), server.cluster.port
        return cls(name, server, FaultProxy(port).__enter__(), url)

    @property
    def kinds(self) -> list[str]:
        return KINDS[self.name]

    @property
    def worker_url(self) -> str:
        return through(self.url, self.proxy.port)

    async def inject(self, kind: str, ledger: Ledger, lease: float) -> None:
        """One fault, healed before it returns; each step goes to the ledger
        first, so a violation can be read against the outage that caused it."""
        ledger.fault(f"broker_{kind}")
        await asyncio.to_thread(self._apply, kind, lease * OUTAGE)
        ledger.fault(f"broker_{kind}_healed")

    def _apply(self, kind: str, outage: float) -> None:
        if kind == "cut":
            self.proxy.blackhole()
            time.sleep(outage)
            self.proxy.forward()
        elif kind == "slow":
            self.proxy.slow(SLOW)
            time.sleep(outage)
            self.proxy.forward()
        elif isinstance(self.server, RedisBroker):
            self._redis(self.server, kind)
        else:
            self._postgres(self.server, kind, outage)

    @staticmethod
    def _redis(server: RedisBroker, kind: str) -> None:
        if kind == "restart":
            server.stop()
        else:
            server.kill()
        server.start()

    @staticmethod
    def _postgres(server: PgBroker, kind: str, outage: float) -> None:
        if kind == "restart":
            server.restart()
            return
        server.kill()
        if kind == "immediate":
            time.sleep(outage)
        server.start()

    def close(self) -> None:
        self.proxy.__exit__(None, None, None)
        self.server.destroy()
