"""The door's GPIO devices (gpiozero), built lock relay first.

Wiring (BCM numbers come from config)::

    relay   -> lock power relay coil driver (fail-secure strike: energised = unlocked;
               fail-safe maglock: energised = locked)
    contact -> door position reed switch to GND (pull-up; closed door = pin low = active)
    rex     -> request-to-exit button to GND (pull-up)
    tamper  -> enclosure tamper switch (pull-up; active = tampered)
    monitor -> optional lock-position monitor (active = locked)

:func:`build_relay` must be the first thing the app does after reading its config: the relay
pin is configured as an output *with* its locked level in one call
(``initial_value``), so it never floats or pulses open at boot.

Example::

    factory = pin_factory("mock")
    relay = build_relay(RelayWiring(pin=17), pin_factory=factory)   # locked from here on
    relay.unlock(); relay.lock()
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gpiozero import DigitalInputDevice, OutputDevice

from storeedge.firmware.dock_door.exc import RelayFault


@dataclass(frozen=True)
class RelayWiring:
    """Lock relay output: BCM ``pin``; ``fail_safe`` True for maglocks (energise to lock);
    ``active_high`` False for relay boards that switch on a low level."""

    pin: int | str
    fail_safe: bool = False
    active_high: bool = True


@dataclass(frozen=True)
class InputWiring:
    """One switch input: BCM ``pin``, ``pull_up`` (switch to GND), ``active_means``: for the
    contact, active = door closed; for REX/tamper, active = pressed/tampered; for the
    monitor, active = locked.  ``invert`` flips that for normally-closed switches.
    ``bounce_s``: debounce time, seconds (None = off)."""

    pin: int | str
    pull_up: bool = True
    invert: bool = False
    bounce_s: float | None = None


class LockRelay:
    """The lock relay, driven to *locked* from construction (fail-secure by default).

    Extends gpiozero :class:`~gpiozero.OutputDevice`: the device's value is the coil
    (energised = 1).  Every command reads the pin back; a mismatch raises :class:`RelayFault`.
    """

    def __init__(self, wiring: RelayWiring, *, pin_factory=None):
        self.wiring = wiring
        self.device = OutputDevice(wiring.pin, active_high=wiring.active_high,
                                   initial_value=self._energised(unlocked=False),
                                   pin_factory=pin_factory)

    def _energised(self, unlocked: bool) -> bool:
        return unlocked != self.wiring.fail_safe

    @property
    def unlocked(self) -> bool:
        """True when the pin is at the unlocked level (read back from the pin)."""
        return bool(self.device.value) == self._energised(unlocked=True)

    def set(self, unlocked: bool) -> None:
        """Drive the relay to unlocked/locked and check the pin followed."""
        self.device.value = self._energised(unlocked)
        if self.unlocked != unlocked:
            want = "unlocked" if unlocked else "locked"
            raise RelayFault(f"relay pin {self.wiring.pin} did not read back {want}")

    def unlock(self) -> None:
        self.set(True)

    def lock(self) -> None:
        self.set(False)

    def close(self) -> None:
        """Leave the pin at the locked level, then release the device."""
        try:
            self.device.value = self._energised(unlocked=False)
        finally:
            self.device.close()


def build_relay(wiring: RelayWiring, *, pin_factory=None) -> LockRelay:
    """Construct the lock relay (locked from the first instant). Call before anything else."""
    return LockRelay(wiring, pin_factory=pin_factory)


class SwitchInput:
    """A debounced switch on a gpiozero :class:`~gpiozero.DigitalInputDevice`.

    ``on_change(active: bool)`` is called from gpiozero's callback thread on every change.
    """

    def __init__(self, wiring: InputWiring, on_change: Callable[[bool], None], *,
                 pin_factory=None):
        self.wiring = wiring
        self.device = DigitalInputDevice(wiring.pin, pull_up=wiring.pull_up,
                                         bounce_time=wiring.bounce_s, pin_factory=pin_factory)
        self._on_change = on_change
        self.device.when_activated = lambda: on_change(self.active)
        self.device.when_deactivated = lambda: on_change(self.active)

    @property
    def active(self) -> bool:
        return bool(self.device.value) != self.wiring.invert

    def close(self) -> None:
        self.device.close()


@dataclass(frozen=True)
class DoorWiring:
    """All door I/O.  ``rex``, ``tamper`` and ``monitor`` are optional (None = not wired)."""

    relay: RelayWiring
    contact: InputWiring
    rex: InputWiring | None = None
    tamper: InputWiring | None = None
    monitor: InputWiring | None = None
