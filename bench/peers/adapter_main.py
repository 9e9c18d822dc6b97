"""Entry point of every adapter: ``<venv>/bin/python adapter_main.py NAME COMMAND ...``.

It lives beside the ``adapters`` package, not inside it, so that the folder on
``sys.path`` is ``bench/peers`` and an adapter named like its library
(``adapters/celery.py``) never shadows the library it imports. Workers import
task modules by these same names (``adapters.rq.noop``), so producer and worker
agree on them.
"""

from __future__ import annotations

import importlib
import sys

from adapters._common import main

if __name__ == "__main__":
    module = importlib.import_module(f"adapters.{sys.argv[1]}")
    peer = module.PEER
    # The adapter's docstring explains its settings; it goes into the settings file.
    peer.notes = peer.notes or " ".join((module.__doc__ or "").split())
    main(peer, sys.argv[2:])
