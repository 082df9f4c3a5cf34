"""COMPATIBILITY SHIM (delete after the toolkit is merged): the servers moved to tests/toolkit/."""

from toolkit import Receiver, Route, SMTPServer, Target, free_port
from toolkit.http import _Server

__all__ = ["Receiver", "Route", "SMTPServer", "Target", "_Server", "free_port"]
