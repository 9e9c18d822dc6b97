"""Dramatiq on its Redis broker, with its default middleware.

The worker runs in this process (``dramatiq.Worker``) rather than through the
``dramatiq`` command, whose parent process forks the workers: one process is
what every library gets. Dramatiq has no bulk enqueue.
"""

from __future__ import annotations

import signal
import threading

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from adapters._common import IO_CONCURRENCY, REDIS_URL, Kind, Peer, job_done

broker = RedisBroker(url=REDIS_URL)
dramatiq.set_broker(broker)
THREADS = {"fast": 8, "io": IO_CONCURRENCY}  # 8 is dramatiq's default
# How long an idle consumer waits before it looks again (1,000 ms by default);
# lowered so that the latency scenario measures dramatiq rather than the default.
WORKER_TIMEOUT_MS = 100


@dramatiq.actor(actor_name="peers_job", queue_name="peers", max_retries=0)
def job(kind: Kind, sent: float) -> None:
    job_done(kind, sent)


def enqueue_one(kind: Kind, sent: float) -> None:
    job.send(kind, sent)


def run_worker(mode: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = dramatiq.Worker(broker, worker_threads=THREADS[mode], worker_timeout=WORKER_TIMEOUT_MS)
    worker.start()
    stop.wait()
    worker.stop()


PEER = Peer(
    name="dramatiq",
    version=dramatiq.__version__,
    enqueue_one=enqueue_one,
    enqueue_bulk=None,
    run_worker=run_worker,
    settings={
        m: {"worker_threads": n, "worker_timeout_ms": WORKER_TIMEOUT_MS, "max_retries": 0}
        for m, n in THREADS.items()
    },
)
