"""Test helpers shared by every test area (brokers, databases, processes)."""
