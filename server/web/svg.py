"""Server-rendered SVG temperature charts (no JavaScript): per-probe mean line, min/max band,
limit lines, alarm marks.  Times epoch seconds, temperatures degC, sizes px."""
from __future__ import annotations

import datetime as _dt
from html import escape
from typing import NamedTuple

H = 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 22, 28
COLOURS = ("#0b5cad", "#7a3e00", "#1d6b2f", "#6a1b9a", "#9c2b2b")   # >= 4.5:1 on white
WIDTHS = (360, 1200)


class Frame(NamedTuple):
    """The plot area: width ``w`` and the time / temperature ranges it shows."""

    w: int
    t0: float
    t1: float
    lo: float
    hi: float

    def x(self, t: float) -> float:
        return LEFT + (t - self.t0) * (self.w - RIGHT - LEFT) / ((self.t1 - self.t0) or 1.0)

    def y(self, v: float) -> float:
        return H - BOTTOM - (v - self.lo) * (H - BOTTOM - TOP) / ((self.hi - self.lo) or 1.0)


def chart(buckets, marks, limits, span: tuple[float, float], title: str,
          width: int = 720) -> str:
    """An SVG document for ``buckets`` (Bucket rows), alarm ``marks`` [(t, label)], ``limits``
    (degC) over ``span`` (t0, t1 epoch s), ``width`` px wide (clamped to WIDTHS; text keeps
    its size)."""
    w = min(max(int(width), WIDTHS[0]), WIDTHS[1])
    t0, t1 = span
    temps = [v for b in buckets for v in (b.lo, b.hi) if v is not None] + list(limits)
    lo, hi = (min(temps) - 1.0, max(temps) + 1.0) if temps else (-25.0, 10.0)
    f = Frame(w, t0, t1, lo, hi)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {H}" role="img" '
             f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
             f'<title>{escape(title)}</title>',
             f'<rect x="0" y="0" width="{w}" height="{H}" fill="#fff"/>']
    parts += _axes(f)
    for limit in limits:
        y = f.y(limit)
        parts.append(f'<line x1="{LEFT}" x2="{w - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#b00020" stroke-dasharray="6 4"/><text x="{w - RIGHT - 4}" '
                     f'y="{y - 3:.1f}" text-anchor="end" fill="#b00020">limit {limit:g} °C</text>')
    probes = sorted({b.probe for b in buckets})
    for i, probe in enumerate(probes):
        parts += _series([b for b in buckets if b.probe == probe], f,
                         COLOURS[i % len(COLOURS)], probe, i)
    parts += _marks(f, marks)
    if not buckets:
        parts.append(f'<text x="{w / 2}" y="{H / 2}" text-anchor="middle" fill="#333">'
                     f'no readings in this range</text>')
    parts.append("</svg>")
    return "".join(parts)


def _marks(f: Frame, marks) -> list[str]:
    out = []
    for k, (t, label) in enumerate(m for m in marks if f.t0 <= m[0] <= f.t1):
        x = f.x(t)
        anchor, dx = ("end", -3) if x > f.w * 0.7 else ("start", 3)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{H - BOTTOM}" '
                   f'stroke="#b00020"/><text x="{x + dx:.1f}" y="{TOP + 12 + 14 * (k % 4)}" '
                   f'text-anchor="{anchor}" fill="#b00020">▲ {escape(label)}</text>')
    return out


def _axes(f: Frame) -> list[str]:
    out = [f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#333"/>',
           f'<line x1="{LEFT}" x2="{f.w - RIGHT}" y1="{H - BOTTOM}" y2="{H - BOTTOM}" '
           f'stroke="#333"/>']
    step = max(1, round((f.hi - f.lo) / 5))
    v = int(f.lo) // step * step
    while v <= f.hi:
        if v >= f.lo:
            out.append(f'<text x="{LEFT - 4}" y="{f.y(v) + 4:.1f}" text-anchor="end" '
                       f'fill="#333">{v}</text>')
        v += step
    fmt = "%H:%M" if f.t1 - f.t0 <= 86400 else "%m-%d"
    ticks = 5 if f.w >= 600 else 3
    for k in range(ticks):
        t = f.t0 + (f.t1 - f.t0) * k / (ticks - 1)
        label = _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime(fmt)
        anchor = "start" if k == 0 else "end" if k == ticks - 1 else "middle"
        out.append(f'<text x="{f.x(t):.1f}" y="{H - 8}" text-anchor="{anchor}" '
                   f'fill="#333">{label}</text>')
    return out


def _series(rows, f: Frame, colour: str, probe: str, i: int) -> list[str]:
    band_top = [(f.x(b.t), f.y(b.hi)) for b in rows if b.hi is not None]
    band_bot = [(f.x(b.t), f.y(b.lo)) for b in rows if b.lo is not None]
    line = [(f.x(b.t), f.y(b.mean)) for b in rows if b.mean is not None]
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
