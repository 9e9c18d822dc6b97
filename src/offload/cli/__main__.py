"""``python -m offload.cli``: the same as the ``offload`` script."""

from offload.cli import main

main()
