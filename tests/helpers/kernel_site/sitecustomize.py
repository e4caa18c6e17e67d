"""Kernel-use tracing (tests only): which code reaches a native kernel backend.

Every backend module a kernel wrapper loads is named ``storeedge.native._<kernel>_cy`` or
``_<kernel>_py`` (``storeedge.native._backend.load_kernel``).  :func:`install` puts a finder
first on ``sys.meta_path`` that wraps each such module, once loaded, in a proxy calling
``on_hit(module_name, attribute)`` on every attribute read (function calls, ``BACKEND``), so a
kernel used by any route -- wrapper, direct import, ``from ... import`` -- is seen.

This file is also the ``sitecustomize`` of child Python processes that the test suite starts
while it records (``helpers.kerneluse`` prepends this directory to their ``PYTHONPATH`` and
names a trace file in ``STOREEDGE_KERNEL_TRACE``): the child appends ``start PID`` at start-up
and ``kernel NAME`` the first time it touches each kernel backend.  Nothing happens when
``STOREEDGE_KERNEL_TRACE`` is unset.
"""
from __future__ import annotations

import importlib.abc
import os
import re
import sys
import types
from typing import Callable

TRACE_ENV = "STOREEDGE_KERNEL_TRACE"
BACKEND_RE = re.compile(r"storeedge\.native\._[A-Za-z0-9_]+_(?:cy|py)\Z")
_COPIED = ("__name__", "__doc__", "__package__", "__loader__", "__spec__", "__file__",
           "__path__", "__cached__", "__builtins__")


class KernelProxy(types.ModuleType):
    """A loaded kernel backend: every attribute read or write goes to the real module and
    reports ``on_hit(name, attribute)`` first (dunders set by the import system excepted)."""

    def __init__(self, real: types.ModuleType, on_hit: Callable[[str, str], None]):
        super().__init__(real.__name__)
        own = {k: getattr(real, k) for k in _COPIED if hasattr(real, k)}
        own["_kt_real"], own["_kt_hit"] = real, on_hit
        self.__dict__.update(own)

    def __getattr__(self, attr: str):
        real = self.__dict__["_kt_real"]
        self.__dict__["_kt_hit"](real.__name__, attr)
        return getattr(real, attr)

    def __setattr__(self, attr: str, value) -> None:
        self.__dict__["_kt_hit"](self.__dict__["_kt_real"].__name__, attr)
        setattr(self.__dict__["_kt_real"], attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self.__dict__["_kt_real"], attr)

    def __dir__(self):
        return dir(self.__dict__["_kt_real"])


class _Loader(importlib.abc.Loader):
    def __init__(self, real, on_hit: Callable[[str, str], None]):
        self.real, self.on_hit = real, on_hit

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module) -> None:
        self.real.exec_module(module)
        self.on_hit(module.__name__, "<load>")
        loaded = sys.modules.get(module.__name__, module)      # a proxy of a nested tracer
        sys.modules[module.__name__] = KernelProxy(loaded, self.on_hit)


class KernelFinder(importlib.abc.MetaPathFinder):
    """Finds kernel backends through the finders after it and wraps their loader."""

    def __init__(self, on_hit: Callable[[str, str], None]):
        self.on_hit = on_hit
        self._busy: set[str] = set()

    def find_spec(self, name, path, target=None):
        if not BACKEND_RE.match(name) or name in self._busy:
            return None              # busy: another tracer (a nested run) asked us back
        self._busy.add(name)
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    spec.loader = _Loader(spec.loader, self.on_hit)
                    return spec
            return None
        finally:
            self._busy.discard(name)


def loaded_backends() -> list[str]:
    """Kernel backends already imported (a proxy installed later would not see their use)."""
    return sorted(n for n in sys.modules if BACKEND_RE.match(n))


def install(on_hit: Callable[[str, str], None]) -> KernelFinder:
    """Trace every kernel backend imported from now on through ``on_hit(module, attribute)``."""
    finder = KernelFinder(on_hit)
    sys.meta_path.insert(0, finder)
    return finder


def importing_file() -> str | None:
    """The file whose module-level code is running inside an import, if any (else None)."""
    frame, module = sys._getframe(1), None
    while frame is not None:
        code = frame.f_code
        if module is None and code.co_name == "<module>":
            module = code.co_filename
        if module is not None and code.co_filename.startswith("<frozen importlib"):
            return module
        frame = frame.f_back
    return None


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())          # one write: lines never interleave
    finally:
        os.close(fd)


def _child_main(path: str) -> None:
    seen: set[str] = set()

    def hit(name: str, attr: str = "") -> None:
        if name not in seen:
            seen.add(name)
            _append(path, f"kernel {name} {os.getpid()}\n")

    _append(path, f"start {os.getpid()}\n")
    for name in loaded_backends():       # imported before site ran: cannot happen, but say so
        hit(name)
    install(hit)


if os.environ.get(TRACE_ENV):
    try:
        _child_main(os.environ[TRACE_ENV])
    except OSError:
        pass        # no trace file: the parent counts this child as unknown (kept)
