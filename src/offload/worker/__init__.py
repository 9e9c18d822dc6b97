"""The asyncio worker; see ``worker.py`` for how its parts fit."""

from offload.worker.worker import ServiceDied, Worker

__all__ = ["ServiceDied", "Worker"]
