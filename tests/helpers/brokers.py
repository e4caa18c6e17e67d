"""Mosquitto for tests: the package's broker runner."""
from storeedge.firmware.common.brokerproc import Mosquitto, free_port, mosquitto_binary  # noqa: F401
