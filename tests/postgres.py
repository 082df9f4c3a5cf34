"""COMPATIBILITY SHIM (delete after the toolkit is merged): moved to tests/toolkit/postgres.py."""

from toolkit import Postgres, find_bin

__all__ = ["Postgres", "find_bin"]
