"""storeedge: firmware for a store's edge devices.

The top-level repository folders are mapped into this import root by setup.py:
``storeedge.firmware``, ``storeedge.native``, ``storeedge.drivers``, ``storeedge.server``.
"""
__version__ = "0.1.0"
