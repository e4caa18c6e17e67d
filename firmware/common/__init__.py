"""Shared service code: config, events, outbox, MQTT link, device service, logging.

See docs/common-api.md for the contract the device apps build on.
"""
