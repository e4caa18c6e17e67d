"""Hardware seams: one module per driver family, each with real and simulated backends.

Backends are registered by name and chosen by config or environment variable (for example
``STOREEDGE_GPIO=mock``); a simulated backend is always chosen explicitly, never as a silent
fallback for a real one that failed to load.
"""
