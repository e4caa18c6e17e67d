"""Mosquitto for tests: the package's broker runner."""
from storeedge.brokerproc import (  # noqa: F401
    Mosquitto, free_port, mosquitto_binary, subscribe_acked)
