"""The asyncio worker; see ``worker.py`` for how its parts fit."""

from offload.worker.supervisor import ServiceDied
from offload.worker.worker import Worker

__all__ = ["ServiceDied", "Worker"]
