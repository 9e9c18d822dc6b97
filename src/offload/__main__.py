"""``python -m offload``: the same as the ``offload`` command, for environments
where the script is not on ``PATH`` (a venv not activated, ``pipx run``)."""

from offload.cli import main

if __name__ == "__main__":
    main()
