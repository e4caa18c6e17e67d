"""The app registry: each device app is declared once, in its own ``spec.py``.

Everything that needs to know which device apps exist reads this module: the command line
(``storeedge <kind>``), the event registry (:mod:`storeedge.events`), the console
(:mod:`storeedge.firmware.console.adapters`), the demo (:mod:`storeedge.firmware.demo`), the
store manifest and broker ACLs (device kinds), and the image generator (``images/imagegen.py``).

An app's ``spec.py`` defines ``SPEC = AppSpec(...)``.  The apps shipped with storeedge are the
modules in :data:`BUILTIN`; an app from another distribution registers its spec module under the
``storeedge.apps`` entry-point group (one line in its ``entry_points.txt``)::

    [storeedge.apps]
    shelf_label = shelfbridge.spec

Nothing here imports an app's code until it is asked for, so ``storeedge --help`` never loads a
camera or GPIO library.
"""
from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from storeedge.exc import AppSpecError

BUILTIN = (
    "storeedge.firmware.checkout.spec",
    "storeedge.firmware.dock_door.spec",
    "storeedge.firmware.freezer.spec",
    "storeedge.firmware.gateway.spec",
)
"""The spec modules of the apps shipped with storeedge (the one registration table)."""

ENTRY_POINT_GROUP = "storeedge.apps"
"""Entry-point group through which other distributions register their app's spec module."""

IDENTITY_KINDS = ("store_server", "sim", "console")
"""Identities that are not device apps but hold certificates (store server, demo, console)."""


@dataclass(frozen=True)
class AppSpec:
    """One device app, declared once.

    Module names may be relative to ``package`` (``".main"``, ``".config:CheckoutConfig"``);
    ``main``, ``events`` and ``demo`` default to the package's ``main``, ``events`` and
    ``demo`` modules, so a spec names only what differs from that layout.

    Attributes:
        kind: the device kind, spelled the same in configs, topics, certificates, images and
            the command line (``dock_door``).
        package: the app's package (``__package__`` in its ``spec.py``).
        title: the app's name for people (headings of the config reference).
        summary: one line for ``storeedge --help``.
        config: the app's config class, ``"module:Class"``.
        build: ``"module:function"`` making the running app from its config, the event sink
            (the device service) and the clock; the one runner (``main`` and the demo) calls it.
        main: module whose ``main(argv) -> int`` is ``storeedge <kind>``.
        events: module declaring the app's event types (imported into the event registry), or
            None.
        demo: module whose ``demo_devices(ctx)`` adds the app's devices to ``storeedge demo``,
            or None.
        hardware_section: the config section holding the app's hardware (store manifest).
        aliases: other command names accepted for ``storeedge <kind>`` (old spellings).
        in_store: a device on the in-store broker (False for the gateway, which bridges).
    """

    kind: str
    package: str
    title: str
    summary: str
    config: str
    build: str | None = None
    main: str = ".main"
    events: str | None = ".events"
    demo: str | None = ".demo"
    hardware_section: str | None = None
    aliases: tuple[str, ...] = ()
    in_store: bool = True

    def absolute(self, name: str) -> str:
        """``name`` with a leading ``.`` resolved against :attr:`package`."""
        return self.package + name if name.startswith(".") else name

    @property
    def main_module(self) -> str:
        return self.absolute(self.main)

    @property
    def events_module(self) -> str | None:
        return self.absolute(self.events) if self.events else None

    @property
    def build_module(self) -> str | None:
        """The module holding ``build`` (and an optional ``before_sink``)."""
        return self.absolute(self.build.partition(":")[0]) if self.build else None

    @property
    def demo_module(self) -> str | None:
        return self.absolute(self.demo) if self.demo else None

    def config_class(self) -> type:
        """Import and return the app's config class."""
        return self._attr(self.config)

    def main_function(self):
        """Import and return the app's ``main(argv) -> int``."""
        return self._attr(f"{self.main}:main")

    def build_function(self):
        """Import and return the app's ``build`` function (:class:`AppSpecError` if none)."""
        if not self.build:
            raise AppSpecError(f"app {self.kind!r} declares no build function")
        return self._attr(self.build)

    def _attr(self, where: str) -> Any:
        module_name, _, name = self.absolute(where).partition(":")
        try:
            return getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise AppSpecError(f"app {self.kind!r}: cannot load {where}: {exc}") from exc


def _load_spec(module_name: str) -> AppSpec:
    try:
        spec = importlib.import_module(module_name).SPEC
    except (ImportError, AttributeError) as exc:
        raise AppSpecError(f"app spec {module_name}: {exc}") from exc
    if not isinstance(spec, AppSpec):
        raise AppSpecError(f"app spec {module_name}: SPEC is not an AppSpec")
    return spec


def _entry_point_modules() -> list[str]:
    return [ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]


@lru_cache(maxsize=1)
def _registry() -> dict[str, AppSpec]:
    specs: dict[str, AppSpec] = {}
    for module_name in dict.fromkeys(BUILTIN + tuple(_entry_point_modules())):
        spec = _load_spec(module_name)
        if spec.kind in specs:
            raise AppSpecError(f"app kind {spec.kind!r} is declared twice ({module_name})")
        specs[spec.kind] = spec
    return specs


def all_apps() -> list[AppSpec]:
    """Every registered app, built-in ones first."""
    return list(_registry().values())


def find(kind: str) -> AppSpec | None:
    """The app for ``kind`` or one of its aliases, or None."""
    for spec in all_apps():
        if kind == spec.kind or kind in spec.aliases:
            return spec
    return None


def app(kind: str) -> AppSpec:
    """The app for ``kind`` or one of its aliases; :class:`AppSpecError` if there is none."""
    spec = find(kind)
    if spec is None:
        raise AppSpecError(f"unknown app kind {kind!r}; known: {', '.join(device_kinds())}")
    return spec


def device_kinds() -> tuple[str, ...]:
    """The kinds of every registered device app (``checkout``, ``dock_door`` ...)."""
    return tuple(_registry())


def in_store_kinds() -> tuple[str, ...]:
    """Kinds of the devices that publish on the in-store broker (every app but the gateway)."""
    return tuple(s.kind for s in all_apps() if s.in_store)


def event_modules() -> tuple[str, ...]:
    """The event-type modules the apps declare."""
    return tuple(s.events_module for s in all_apps() if s.events)


def refresh() -> None:
    """Forget the loaded registry (after installing an app at run time, and in tests)."""
    _registry.cache_clear()
