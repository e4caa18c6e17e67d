"""Device apps (one package each) and the shared service code in ``firmware.common``."""
