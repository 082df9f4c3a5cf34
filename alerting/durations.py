"""Durations as people write them in config: ``30s``, ``5m``, ``1h30m``, ``2d`` or a number of seconds."""

from __future__ import annotations

import math
import re

MAX_SECONDS = 3650 * 86400.0  # 10 years: beyond any sane setting, and well inside datetime's range
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")


def parse_duration(value: object) -> float:
    """Return seconds as a float; raise ValueError with a readable reason.

    Negative, not-a-number, infinite and absurd (over 10 years) values are refused."""
    seconds = _seconds(value)
    if math.isnan(seconds):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {_shown(value)}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {_shown(value)}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"a duration cannot exceed {format_duration(MAX_SECONDS)} (10 years), got {_shown(value)}")
    return seconds


def _seconds(value: object) -> float:
    """The number of seconds written, unchecked (may be negative, infinite or NaN)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an int too big for a float
            seconds = math.inf
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos or text[pos:match.start()].strip():
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
                while pos < len(text) and text[pos] == " ":
                    pos += 1
            if pos != len(text) or not text:
                raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
    else:
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
    return seconds


def _shown(value: object) -> str:
    """The value as the user wrote it, kept short (a 10,000-digit number stays readable)."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bound(seconds: float) -> str:
    """A bound as people write it: ``100ms``, ``0s``, ``5m``, ``1d``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return format_duration(seconds).replace(" ", "")


def bounded_duration(value: object, low: float, high: float) -> float:
    """A duration within ``low <= seconds <= high``; the error states the bounds."""
    seconds = _seconds(value)
    if not low <= seconds <= high:  # also NaN
        raise ValueError(
            f"must be from {_bound(low)} to {_bound(high)}, got {_shown(value)}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """``3725`` -> ``1h 2m 5s``; under a minute keeps one decimal below 10 s."""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount or (unit == "s" and not parts):
            parts.append(f"{amount}{unit}")
    return " ".join(parts)
