"""Server-rendered SVG temperature charts (no JavaScript): per-probe mean line, min/max band,
limit lines, alarm marks.  Times epoch seconds, temperatures degC."""
from __future__ import annotations

import datetime as _dt
from html import escape

W, H = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 22, 28
COLOURS = ("#0b5cad", "#7a3e00", "#1d6b2f", "#6a1b9a", "#9c2b2b")   # >= 4.5:1 on white


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) * (b - a) / span


def chart(buckets, marks, limits, t0: float, t1: float, title: str) -> str:
    """An SVG document for ``buckets`` (Bucket rows), alarm ``marks`` [(t, label)], ``limits``."""
    temps = [v for b in buckets for v in (b.lo, b.hi) if v is not None] + list(limits)
    lo, hi = (min(temps) - 1.0, max(temps) + 1.0) if temps else (-25.0, 10.0)
    x = _scale(t0, t1, LEFT, W - RIGHT)
    y = _scale(lo, hi, H - BOTTOM, TOP)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
             f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
             f'<title>{escape(title)}</title>',
             f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>']
    parts += _axes(x, y, lo, hi, t0, t1)
    for limit in limits:
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(limit):.1f}" '
                     f'y2="{y(limit):.1f}" stroke="#b00020" stroke-dasharray="6 4"/>'
                     f'<text x="{W - RIGHT - 4}" y="{y(limit) - 3:.1f}" text-anchor="end" '
                     f'fill="#b00020">limit {limit:g} °C</text>')
    probes = sorted({b.probe for b in buckets})
    for i, probe in enumerate(probes):
        parts += _series([b for b in buckets if b.probe == probe], x, y,
                         COLOURS[i % len(COLOURS)], probe, i)
    for k, (t, label) in enumerate(m for m in marks if t0 <= m[0] <= t1):
        anchor, dx = ("end", -3) if x(t) > W * 0.8 else ("start", 3)
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" y2="{H - BOTTOM}" '
                     f'stroke="#b00020"/><text x="{x(t) + dx:.1f}" y="{TOP + 12 + 14 * (k % 4)}" '
                     f'text-anchor="{anchor}" fill="#b00020">▲ {escape(label)}</text>')
    if not buckets:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" fill="#333">'
                     f'no readings in this range</text>')
    parts.append("</svg>")
    return "".join(parts)


def _axes(x, y, lo: float, hi: float, t0: float, t1: float) -> list[str]:
    out = [f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#333"/>',
           f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{H - BOTTOM}" y2="{H - BOTTOM}" '
           f'stroke="#333"/>']
    step = max(1, round((hi - lo) / 5))
    v = int(lo) // step * step
    while v <= hi:
        if v >= lo:
            out.append(f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end" '
                       f'fill="#333">{v}</text>')
        v += step
    fmt = "%H:%M" if t1 - t0 <= 86400 else "%m-%d"
    for k in range(5):
        t = t0 + (t1 - t0) * k / 4
        label = _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime(fmt)
        anchor = ("start", "middle", "middle", "middle", "end")[k]
        out.append(f'<text x="{x(t):.1f}" y="{H - 8}" text-anchor="{anchor}" '
                   f'fill="#333">{label}</text>')
    return out


def _series(rows, x, y, colour: str, probe: str, i: int) -> list[str]:
    band_top = [(x(b.t), y(b.hi)) for b in rows if b.hi is not None]
    band_bot = [(x(b.t), y(b.lo)) for b in rows if b.lo is not None]
    line = [(x(b.t), y(b.mean)) for b in rows if b.mean is not None]
    out = []
    if band_top and band_bot:
        pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in band_top + band_bot[::-1])
        out.append(f'<polygon points="{pts}" fill="{colour}" fill-opacity="0.15"/>')
    if line:
        pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in line)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                   f'stroke-width="1.5"/>')
    out.append(f'<text x="{LEFT + 6 + 90 * i}" y="{TOP - 6}" fill="{colour}">'
               f'■ {escape(probe)}</text>')
    return out
