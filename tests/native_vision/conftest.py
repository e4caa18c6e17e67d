"""Test helpers for the native vision kernels: makes vision_reference importable."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
