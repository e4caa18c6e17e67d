#!/bin/sh
# storeedge-app layer, run inside the target root (chroot, arm64 under qemu-user) by images/build.
# Expects /tmp/storeedge-build/src (the repository at the built commit) and
# /tmp/storeedge-build/wheels (aarch64 wheels of the dependencies and build tools, from PyPI).
set -eu
B=/tmp/storeedge-build
getent group gpio >/dev/null || addgroup --system gpio
getent passwd storeedge >/dev/null || adduser --system --group --home /data/storeedge \
    --no-create-home --gecos "storeedge apps" storeedge
usermod -a -G gpio,dialout,video storeedge

# images/build restores both venvs from its cache (lib/pyenv-cache.sh) when the root's packages,
# the wheels, this script and the dependency lists are unchanged, and marks that with
# $B/pyenv-cached: then only the storeedge wheel is built and installed again.
CACHED=0
[ -e "$B/pyenv-cached" ] && [ -x "$B/buildenv/bin/pip" ] && [ -x /opt/storeedge/venv/bin/pip ] && CACHED=1
echo "install-storeedge: compiling the storeedge wheel for $(uname -m) (Cython, -march=armv8-a)"
if [ "$CACHED" = 0 ]; then
    python3 -m venv "$B/buildenv"
    "$B/buildenv/bin/pip" install -q --no-index --find-links "$B/wheels" \
        "setuptools>=68" wheel "Cython>=3.0,<4" "numpy>=2.0,<3"
fi
cd "$B/src"
STOREEDGE_CFLAGS="-march=armv8-a" "$B/buildenv/bin/pip" wheel -q --no-index \
    --find-links "$B/wheels" --no-build-isolation --no-deps -w "$B/built" .
ls "$B/built"

cd /     # not from the source tree: its storeedge/ folder would shadow the installed package
if [ "$CACHED" = 1 ]; then
    echo "install-storeedge: cached dependencies in /opt/storeedge/venv; installing storeedge only"
    /opt/storeedge/venv/bin/pip install -q --no-index --no-deps --no-compile \
        --find-links "$B/built" storeedge
    /opt/storeedge/venv/bin/python -m compileall -q \
        "$(/opt/storeedge/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/storeedge" \
        >/dev/null || true
    # The cache must hold what this storeedge needs: pip check fails the build otherwise.
    /opt/storeedge/venv/bin/pip check
else
    echo "install-storeedge: installing into /opt/storeedge/venv"
    python3 -m venv /opt/storeedge/venv
    /opt/storeedge/venv/bin/pip install -q --no-index --no-compile --find-links "$B/wheels" \
        --find-links "$B/built" storeedge
    if [ -s "$B/python-packages.txt" ]; then
        echo "install-storeedge: extra packages: $(tr '\n' ' ' < "$B/python-packages.txt")"
        /opt/storeedge/venv/bin/pip install -q --no-index --no-compile --find-links "$B/wheels" \
            -r "$B/python-packages.txt"
    fi
    /opt/storeedge/venv/bin/python -m compileall -q /opt/storeedge/venv/lib >/dev/null || true
fi
ln -sf /opt/storeedge/venv/bin/storeedge /usr/local/bin/storeedge
# The compiled kernels must load on the target (not the pure-Python twins).
/opt/storeedge/venv/bin/python - <<'PY'
import glob, importlib, os
import storeedge.native as native
sos = sorted(glob.glob(os.path.join(os.path.dirname(native.__file__), "_*_cy*.so")))
assert sos, "no compiled native kernels in the installed wheel"
for so in sos:
    name = os.path.basename(so).split(".")[0]
    importlib.import_module("storeedge.native." + name)
    print("install-storeedge: native kernel loads:", name)
PY
/opt/storeedge/venv/bin/pip list --format=freeze > /usr/share/storeedge/python-packages.txt
