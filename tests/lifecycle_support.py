"""COMPATIBILITY SHIM (delete after the toolkit is merged): ``Target(503)`` is now toolkit.Target,
whose unrouted paths answer ``target.status``."""

from toolkit import Target

__all__ = ["Target"]
