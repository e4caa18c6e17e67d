"""1-Wire temperature probes (DS18B20 and kin) through Linux ``w1_therm`` sysfs.

* :mod:`.parser` -- pure parsers of the sysfs texts, CRC-8, stale detection (:class:`Sample`,
  :class:`Fault`).
* :mod:`.sysfs` -- :class:`SysfsBus`, the real backend, and :func:`open_bus` (backend by name or
  ``$STOREEDGE_ONEWIRE``: ``sysfs`` or ``sim``).
* :mod:`.sim` -- :class:`SimulatedBus`, real-format files in a temp folder driven by a thermal
  model of a cabinet (:class:`ThermalModel`), with every fault on demand.
"""
from storeedge.drivers.onewire.exc import (BadRomId, BusNotFound, ConversionTimeUnsupported,
                                           OneWireError, ProbeIOError)
from storeedge.drivers.onewire.parser import (Fault, Sample, StaleDetector, check_rom, crc8,
                                              parse_master_slaves, parse_temperature,
                                              parse_w1_slave)
from storeedge.drivers.onewire.sysfs import DEFAULT_ROOT, SysfsBus, open_bus

__all__ = [
    "BadRomId", "BusNotFound", "ConversionTimeUnsupported", "OneWireError", "ProbeIOError",
    "Fault", "Sample", "StaleDetector", "check_rom", "crc8", "parse_master_slaves",
    "parse_temperature", "parse_w1_slave", "DEFAULT_ROOT", "SysfsBus", "open_bus",
]
