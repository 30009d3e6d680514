# Fingerprint our source as the process starts, before any lazy import can load a later version of it.
from core import code_state  # noqa: F401
