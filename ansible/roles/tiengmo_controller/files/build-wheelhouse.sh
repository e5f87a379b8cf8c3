#!/bin/sh
# Build the project's wheel and its extras' dependencies into a wheelhouse on
# the control machine, so a site machine installs offline (pip install
# --no-index --find-links) and reaches no package index.
#
# usage: build-wheelhouse.sh REPO_DIR WHEELHOUSE_DIR [PYTHON] [EXTRAS]
#   EXTRAS: node,sentinel (default; pure-Python wheels for the Pis) or hub.
#   TIENGMO_WHEEL_PYTHON_VERSION (e.g. 3.11, Debian bookworm's Python) and
#   TIENGMO_WHEEL_PLATFORM (e.g. manylinux_2_36_aarch64 for a hub on a Pi 4/5):
#   fetch the platform wheels a hub needs (pydantic-core, psycopg-binary,
#   sqlalchemy, ...) for that Python and machine rather than the controller's own.
# Prints "changed" as its last line when the wheelhouse's content changed.
# The wheel is reproducible (SOURCE_DATE_EPOCH, clean source copy), so an
# unchanged source tree gives byte-identical wheels and Ansible sees no change.
set -eu
repo=$1
out=$2
python=${3:-python3}
extras=${4:-node,sentinel}
: "${TIENGMO_WHEEL_PYTHON_VERSION:=}"
: "${TIENGMO_WHEEL_PLATFORM:=}"
target=""
[ -z "$TIENGMO_WHEEL_PYTHON_VERSION" ] || target="$target --python-version $TIENGMO_WHEEL_PYTHON_VERSION --implementation cp"
[ -z "$TIENGMO_WHEEL_PLATFORM" ] || target="$target --platform $TIENGMO_WHEEL_PLATFORM"
: "${TIENGMO_BUILD_ISOLATION:=1}"
: "${SOURCE_DATE_EPOCH:=315532800}"   # 1980-01-01: any fixed time makes zip entries stable
export SOURCE_DATE_EPOCH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/src" "$work/wh"

# A clean copy: an in-tree build would pick up stale build/ output.
tar -C "$repo" --exclude=.git --exclude=build --exclude=dist --exclude='*.egg-info' \
    --exclude=.venv --exclude=venv --exclude=node_modules --exclude=__pycache__ \
    --exclude=.pytest_cache --exclude=.mypy_cache --exclude=.ruff_cache \
    --exclude=.hypothesis --exclude=ansible -cf - . | tar -C "$work/src" -xf -
# Pin every file's time too, so the wheel's zip entries do not vary.
find "$work/src" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

iso=""
[ "$TIENGMO_BUILD_ISOLATION" = 1 ] || iso="--no-build-isolation"
"$python" -m pip wheel -q --no-deps $iso --wheel-dir "$work/wh" "$work/src" >&2
wheel=$(ls "$work/wh"/tiengmo-*.whl)

# Dependencies of the extras. The node and sentinel ones are pure-Python wheels
# (paho-mqtt, gpiozero, colorzero, pyserial), the same on a Pi as here; the hub's
# include platform wheels ($target picks the site's Python and machine). Offline
# first, so a field laptop with a filled wheelhouse needs no network.
# shellcheck disable=SC2086  # $target is a list of options
if ! "$python" -m pip download -q --no-index --find-links "$out" --dest "$work/wh" \
        --only-binary=:all: $target "$wheel[$extras]" >&2 2>/dev/null; then
    "$python" -m pip download -q --only-binary=:all: $target --dest "$work/wh" "$wheel[$extras]" >&2
fi

changed=0
for f in "$work/wh"/*.whl; do
    name=$(basename "$f")
    if ! cmp -s "$f" "$out/$name"; then
        cp "$f" "$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name"
        changed=1
    fi
done
# Drop wheels that are no longer wanted (an older tiengmo, a replaced dependency).
for f in "$out"/*.whl; do
    [ -e "$f" ] || continue
    [ -e "$work/wh/$(basename "$f")" ] || { rm -f "$f"; changed=1; }
done
# Checksums for the node: proves the copy, and tells whether to reinstall.
(cd "$out" && sha256sum -- *.whl) > "$work/SHA256SUMS"
cmp -s "$work/SHA256SUMS" "$out/SHA256SUMS" || cp "$work/SHA256SUMS" "$out/SHA256SUMS"
[ "$changed" = 1 ] && echo changed || echo unchanged
