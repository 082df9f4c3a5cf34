"""One SVG badge per monitor, shields.io style: ``<name> | up 99.98%``. Text is escaped; the width
is estimated from character counts (no font metrics needed, a little slack on each side)."""

from __future__ import annotations

from markupsafe import escape

from alerting.status_page.data import Monitor
from alerting.status_page.render import pct

COLOURS = {"up": "#1a7f37", "degraded": "#b35900", "down": "#cf222e", "maintenance": "#0969da", "unknown": "#6e7781"}
WORDS = {"up": "up", "degraded": "degraded", "down": "down", "maintenance": "maintenance", "unknown": "no data"}


def _width(text: str) -> int:
    return 10 + int(sum(7.5 if c.isupper() or c in "mwMW%" else 6.2 for c in text))


def badge(m: Monitor) -> str:
    label = m.name
    message = WORDS[m.status] + (f" {pct(m.uptime)}" if m.uptime is not None else "")
    lw, mw = _width(label), _width(message)
    total = lw + mw
    colour = COLOURS[m.status]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{escape(label)}: {escape(message)}"><title>{escape(label)}: {escape(message)}</title>'
        f'<rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">'
        f'<text x="{lw / 2:.1f}" y="14">{escape(label)}</text><text x="{lw + mw / 2:.1f}" y="14">{escape(message)}</text>'
        f"</g></svg>\n"
    )
