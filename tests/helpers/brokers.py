"""Mosquitto for tests: the package's broker runner."""
from storeedge.firmware.common.brokerproc import (  # noqa: F401
    Mosquitto, free_port, mosquitto_binary, subscribe_acked)
