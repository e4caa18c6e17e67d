"""Exceptions of the ``storeedge`` package (CLI-level tools such as the store PKI).

One base class; each class also inherits the matching built-in.
"""
from __future__ import annotations


class StoreedgeToolError(Exception):
    """Base class of every storeedge (package-level tool) error."""


class PKIError(StoreedgeToolError, ValueError):
    """A store PKI operation cannot be done (bad id/kind, already enrolled, missing CA...)."""


class PKINotFound(PKIError, FileNotFoundError):
    """The PKI folder or an enrolment does not exist."""


class BrokerConfError(StoreedgeToolError, ValueError):
    """A Mosquitto config cannot be generated from the enrolment list."""


class SealKeyError(StoreedgeToolError, ValueError):
    """An end-to-end event key (or the store's master secret) is missing, unreadable or bad."""
