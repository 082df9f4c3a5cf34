"""Writing the site atomically: every file goes into a new directory beside the target, which is then
swapped in whole (Linux ``renameat2(RENAME_EXCHANGE)``: one step; elsewhere two renames, where the
target is missing for an instant but never half written). A web server serving the target sees the
old site or the new one, never a mix; a build that fails leaves the old site as it was.

The target is replaced whole, so it must be a directory this code made (it holds ``MARKER``), or
empty, or new: pointing ``out`` at a folder with other files in it is refused, not emptied.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
import time
from pathlib import Path

MARKER = ".alerting-status-page"
STALE_AFTER = 3600.0  # a half-built directory this old was left by a build that was killed
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class SiteError(Exception):
    """The site cannot be written where asked; the message says why and where."""


def check_target(out: Path) -> None:
    """Raise SiteError unless ``out`` is new, empty, or a site made by this code."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise SiteError(f"{out} exists and is not a directory")
    if out.is_dir() and not (out / MARKER).exists() and any(out.iterdir()):
        raise SiteError(f"{out} has files that alerting did not make; choose a new or empty directory "
                        "(the site directory is replaced whole on every build)")


def publish(out: Path, files: dict[str, str]) -> None:
    """Write ``files`` (relative path -> text) as the whole content of ``out``, atomically."""
    out = Path(out)
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SiteError(f"cannot create {parent}: {exc.strerror or exc}") from None
    check_target(out)
    _remove_stale(parent, out.name)
    try:
        new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=parent))
    except OSError as exc:
        raise SiteError(f"cannot write in {parent}: {exc.strerror or exc}") from None
    try:
        for rel, text in files.items():
            path = new / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (new / MARKER).write_text("made by `alerting status-page build`; replaced whole on every build\n")
        os.chmod(new, 0o755)  # mkdtemp makes it private; a web server must read it
        old = _swap(new, out)
    except OSError as exc:
        shutil.rmtree(new, ignore_errors=True)
        raise SiteError(f"cannot write the site to {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _swap(new: Path, out: Path) -> Path | None:
    """Put ``new`` at ``out``; return where the previous site now is (to delete), or None."""
    if not out.exists():
        os.rename(new, out)
        return None
    if _exchange(new, out):
        return new  # the names swapped: ``new`` now holds the old site
    old = new.with_name(new.name + ".old")
    os.rename(out, old)
    try:
        os.rename(new, out)
    except OSError:
        os.rename(old, out)  # put the old site back
        raise
    return old


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False when the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: this kernel or file system cannot
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _remove_stale(parent: Path, name: str) -> None:
    cutoff = time.time() - STALE_AFTER
    for leftover in parent.glob(f".{name}.new-*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass
