"""What only a device needs: the outbox, the device service (the event sink), the runner, the
command gate, live config and the systemd watchdog.  The protocol and config machinery every hop
shares live in the core, :mod:`storeedge`.

See docs/common-api.md for the contract the device apps build on.
"""
