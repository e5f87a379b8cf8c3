#!/bin/sh
# Build the project's wheel and the node extra's dependencies into a
# wheelhouse on the control machine, so a Pi with poor internet installs
# offline (pip install --no-index --find-links).
#
# usage: build-wheelhouse.sh REPO_DIR WHEELHOUSE_DIR [PYTHON]
# Prints "changed" as its last line when the wheelhouse's content changed.
# The wheel is reproducible (SOURCE_DATE_EPOCH, clean source copy), so an
# unchanged source tree gives byte-identical wheels and Ansible sees no change.
set -eu
repo=$1
out=$2
python=${3:-python3}
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

# Dependencies of the node and sentinel extras: pure-Python wheels (paho-mqtt,
# gpiozero, colorzero, pyserial), the same on a Pi as here. Offline first, so a
# field laptop with a filled wheelhouse needs no network.
if ! "$python" -m pip download -q --no-index --find-links "$out" --dest "$work/wh" \
        --only-binary=:all: "$wheel[node,sentinel]" >&2 2>/dev/null; then
    "$python" -m pip download -q --only-binary=:all: --dest "$work/wh" "$wheel[node,sentinel]" >&2
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
