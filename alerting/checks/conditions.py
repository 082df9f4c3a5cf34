"""Conditions on a JSON body, one readable string each (pure: parse, then evaluate on a document).

    $.status == UP                 equal (the value is read as JSON when it can be: 200, true, "a b")
    $.version != 1.2.0             not equal
    $.checks.db.latency_ms < 250   <, <=, >, >= on numbers
    len($.items) > 0               the length of a list, string or object
    $.tags contains prod           a list holding it, a string containing it, an object with that key
    $.tags not contains legacy
    header.Content-Type contains json   a response header (any case), with the same operators

The path is JSONPath (RFC 9535, through python-jsonpath); one match is compared as itself, several
as the list of matches. A failed condition says which one, and the value seen.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_FORM = re.compile(
    r"^\s*(?:(?P<len>len)\(\s*(?P<lpath>\$.*?)\s*\)|(?P<path>\$\S*)|header\.(?P<header>[!#$%&'*+.^_`|~0-9A-Za-z-]+))\s*"
    r"(?P<op>==|!=|<=|>=|<|>|not\s+contains\b|contains\b)\s*(?P<value>.*?)\s*$"
)
_NUMERIC = ("<", "<=", ">", ">=")
_MISSING = object()
EXAMPLES = "'$.status == UP', '$.db.latency_ms < 250', 'len($.items) > 0', '$.tags contains prod'"


@dataclass(frozen=True)
class Condition:
    text: str
    path: Any  # jsonpath.JSONPath; None for a header condition
    length: bool
    op: str
    expected: Any
    header: str | None = None  # a header condition: the header's name, lower case


@lru_cache(maxsize=4096)
def parse(text: str) -> Condition:
    """One condition; ValueError saying what is wrong and how one is written."""
    match = _FORM.match(text)
    if not match:
        raise ValueError(f"cannot read the condition {text!r}: write PATH OPERATOR VALUE, e.g. {EXAMPLES}")
    op = " ".join(match["op"].split())
    raw = match["value"]
    if raw == "":
        raise ValueError(f"the condition {text!r} has no value after {op!r}")
    if match["header"]:
        expected = raw if op not in _NUMERIC else _value(raw)
        if op in _NUMERIC and not _number(expected):
            raise ValueError(f"the condition {text!r} compares with {op!r}: the value must be a number, got {raw!r}")
        return Condition(text.strip(), None, False, op, expected, header=match["header"].lower())
    path_text = match["lpath"] if match["len"] else match["path"]
    import jsonpath  # here: ~0.1 s to import, and most configs have no JSON condition

    try:
        path = jsonpath.compile(path_text)
    except jsonpath.JSONPathError as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"the condition {text!r} has an invalid JSON path {path_text!r}: {reason}") from None
    expected = _value(raw)
    if (op in _NUMERIC or match["len"]) and not _number(expected):
        raise ValueError(f"the condition {text!r} compares with {op!r}: the value must be a number, got {raw!r}")
    return Condition(text.strip(), path, bool(match["len"]), op, expected)


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "nothing (the path matched no value)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def evaluate(condition: Condition, document: Any, headers: dict[str, str] | None = None) -> str | None:
    """None when the condition holds; else ``'<condition>' failed: got <value>``. ``headers``: the
    response's, names in lower case."""
    value: Any
    if condition.header is not None:
        value = (headers or {}).get(condition.header, _MISSING)
        if value is not _MISSING and condition.op in _NUMERIC:
            value = _value(value)
    else:
        matches = condition.path.findall(document)
        value = _MISSING if not matches else matches[0] if len(matches) == 1 else list(matches)
    seen = value
    if value is not _MISSING and condition.length:
        if not isinstance(value, (list, str, dict)):
            return f"{condition.text!r} failed: {_shown(value)} has no length"
        value = len(value)
        seen = f"length {value}"
    if value is not _MISSING and _holds(condition.op, value, condition.expected):
        return None
    shown = seen if isinstance(seen, str) and condition.length else _shown(seen)
    return f"{condition.text!r} failed: got {shown}"


def _holds(op: str, value: Any, expected: Any) -> bool:
    if op == "==":
        return bool(value == expected or (isinstance(value, str) and value == str(expected)))
    if op == "!=":
        return not _holds("==", value, expected)
    if op in _NUMERIC:
        if not _number(value):
            return False
        return {"<": value < expected, "<=": value <= expected, ">": value > expected, ">=": value >= expected}[op]
    contained = _contains(value, expected)
    return contained if op == "contains" else not contained


def _contains(value: Any, expected: Any) -> bool:
    if isinstance(value, list):
        return expected in value or str(expected) in [str(v) for v in value]
    if isinstance(value, dict):
        return str(expected) in value
    if isinstance(value, str):
        return str(expected) in value
    return False


def first_failure(conditions: list[str], body: bytes | None, headers: dict[str, str] | None = None) -> str | None:
    """The first failing condition's message, or None when all hold (a body that is not JSON fails
    every JSON condition; header conditions need no body)."""
    parsed = [parse(text) for text in conditions]
    document: Any = None
    on_body = [c for c in parsed if c.header is None]
    if on_body:
        try:
            document = json.loads(body or b"")
        except ValueError:
            return f"the body is not JSON, so {on_body[0].text!r} cannot hold ({len(body or b''):,} bytes read)"
    for condition in parsed:
        if (failure := evaluate(condition, document, headers)) is not None:
            return failure
    return None


def on_body(text: str) -> bool:
    """Whether a (valid) condition reads the JSON body, not a header."""
    return parse(text).header is None
