"""Root conftest: loads the kernel-use plugin first, so it can trace every native kernel
backend from the first import (``--kernel-use-record`` / ``--kernel-use-select``; see
tests/helpers/kerneluse.py and docs/DEVELOPING.md)."""
pytest_plugins = ["helpers.kerneluse"]
