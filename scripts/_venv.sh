# Sourced by scripts/test and scripts/demo: one virtualenv at .venv with offload
# installed in editable mode. The install is skipped while pyproject.toml is
# unchanged since the last one, so the scripts also work offline once set up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    echo "creating .venv" >&2
    python3 -m venv .venv
fi

stamp=.venv/.offload-installed
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "installing offload and its dev dependencies into .venv" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    echo "$wanted" > "$stamp"
fi
