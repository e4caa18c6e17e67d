"""Pick a kernel's backend: compiled Cython or its pure-Python twin.

``STOREEDGE_PURE=1`` (read at import time of each wrapper) selects the twins.  Otherwise the
compiled module must import; if it does not, :class:`NativeBackendError` says which module
failed and why, so a broken build is never hidden behind a slow fallback.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

from storeedge.native.exc import NativeBackendError

PURE_ENV = "STOREEDGE_PURE"


def pure_forced() -> bool:
    """True when ``STOREEDGE_PURE`` is set to a true value (1, true, yes)."""
    return os.environ.get(PURE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def load_kernel(name: str) -> ModuleType:
    """Return the backend module for kernel ``name`` (``_name_cy`` or ``_name_py``).

    The returned module has an attribute ``BACKEND`` equal to ``"cython"`` or ``"python"``.
    """
    if pure_forced():
        return importlib.import_module(f"storeedge.native._{name}_py")
    try:
        return importlib.import_module(f"storeedge.native._{name}_cy")
    except ImportError as exc:
        raise NativeBackendError(
            f"compiled kernel storeedge.native._{name}_cy failed to load ({exc}); "
            f"rebuild with 'pip install -e .' or set {PURE_ENV}=1 for the pure twin"
        ) from exc
