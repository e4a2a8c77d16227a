"""Raises KeyboardInterrupt at import (nobody pressed Ctrl-C)."""
raise KeyboardInterrupt


def make():
    return None
