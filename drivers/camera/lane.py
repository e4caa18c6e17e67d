"""Scripted self-checkout transactions for the synthetic lane: what happens and the truth.

Coordinates are main-stream pixels of an overhead view (x to the right = from the pick area,
over the scanner, to the bagging area; the shopper stands at the bottom edge). Times are
seconds from the start of the script. :func:`make_script` draws one transaction from a seed and
a difficulty :class:`LaneLevel`; it returns the actors to render, the POS lines the scanner
would send (with realistic latency) and the ground truth of every pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAIN_W, MAIN_H = 960, 540
PICK_END = 0.36          # fraction of the width where the scan zone starts
BAG_START = 0.62         # fraction of the width where the bagging area starts


@dataclass(frozen=True)
class LaneLevel:
    """A difficulty level: probabilities per pass, speeds in main px/s, times in seconds."""

    name: str
    speed: tuple[float, float] = (500.0, 800.0)
    skip: float = 0.1
    cover: float = 0.0
    stack: float = 0.0
    switch: float = 0.0
    produce: float = 0.1
    double: float = 0.0
    phone: float = 0.0
    empty_reach: float = 0.0
    code_up: float = 0.95
    shadows: bool = False
    lighting: float = 0.0          # peak relative gain change
    noise: float = 0.0             # sensor noise sigma, grey levels
    latency: tuple[float, float] = (0.05, 0.35)
    gap: tuple[float, float] = (0.4, 1.0)
    pos_delay: tuple[float, float] = (0.0, 0.0)    # relay delay of every POS line, drawn per lane
    pos_jitter: tuple[float, float] = (0.0, 0.0)   # extra delay drawn per line
    brightness: float = 1.0        # exposure: 0.5 = frames at half brightness
    module_px: float = 2.0         # printed barcode module width on the main stream (px)


LEVELS = {
    "easy": LaneLevel("easy", skip=0.15, produce=0.1),
    "medium": LaneLevel("medium", speed=(550, 950), skip=0.12, cover=0.06, switch=0.06,
                        produce=0.15, double=0.04, phone=0.1, shadows=True, lighting=0.15,
                        noise=2.0, code_up=0.85),
    "hard": LaneLevel("hard", speed=(650, 1150), skip=0.12, cover=0.08, stack=0.08,
                      switch=0.08, produce=0.15, double=0.05, phone=0.15, empty_reach=0.12,
                      code_up=0.8, shadows=True, lighting=0.3, noise=4.0,
                      latency=(0.05, 0.5), gap=(0.25, 0.8)),
}


@dataclass(frozen=True)
class Path:
    """Piecewise-linear motion: ``t`` (s) strictly increasing, ``x``/``y`` centre (px)."""

    t: tuple[float, ...]
    x: tuple[float, ...]
    y: tuple[float, ...]

    def at(self, t: float) -> tuple[float, float] | None:
        """Centre at time ``t`` or None outside the path's time span."""
        if t < self.t[0] or t > self.t[-1]:
            return None
        return float(np.interp(t, self.t, self.x)), float(np.interp(t, self.t, self.y))


@dataclass(frozen=True)
class Actor:
    """Something drawn: kind is item, produce, hand, phone, bag or shadow.

    size: (w, h) px; colour: RGB; code: GTIN text printed on it (None: none); code_up: the
    label faces the camera; offset: (dx, dy) px from the path centre; label_covered: a hand
    hides the label.
    """

    kind: str
    path: Path
    size: tuple[int, int]
    colour: tuple[int, int, int]
    code: str | None = None
    code_up: bool = False
    offset: tuple[float, float] = (0.0, 0.0)
    label_covered: bool = False


@dataclass(frozen=True)
class PosLine:
    """A line the POS sends: kind scan/txn_start/txn_end; t in s; code text; symbology AIM id."""

    t: float
    kind: str
    code: str = ""
    symbology: str = ""


@dataclass(frozen=True)
class TruthPass:
    """Ground truth of one pass. kind: scanned, skipped, covered, stacked, ticket_switch,
    produce, produce_skipped, double. expect: none, missed or switch. Times in s."""

    kind: str
    t_start: float
    t_scan_in: float
    t_scan_out: float
    t_end: float
    codes: tuple[str, ...]
    scanned: tuple[str, ...]
    code_visible: bool
    expect: str


@dataclass
class LaneScript:
    """One scripted transaction."""

    seed: int
    level: LaneLevel
    duration: float
    actors: list[Actor] = field(default_factory=list)
    pos: list[PosLine] = field(default_factory=list)
    truth: list[TruthPass] = field(default_factory=list)
    lighting: tuple[float, float, float] = (0.0, 0.0, 1.0)   # amplitude, phase, period s


def gtin13(rng: np.random.Generator) -> str:
    """A random valid EAN-13 (GS1 company prefix range 40-49, Germany-like)."""
    body = "4" + "".join(str(d) for d in rng.integers(0, 10, 11))
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _colour(rng) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(20, 236, 3))


class _Builder:
    """Accumulates actors, POS lines and truth while walking through the basket."""

    def __init__(self, seed: int, level: LaneLevel, n_items: int):
        self.rng = np.random.default_rng(seed)
        self.level = level
        self.n_items = n_items
        self.t = 0.6
        self.script = LaneScript(seed, level, 0.0)
        self.catalogue = [gtin13(self.rng) for _ in range(max(8, n_items + 4))]
        # drawn from a separate stream so a stress level keeps the same basket as its base
        extra = np.random.default_rng([seed, 20])
        self.pos_delay = float(extra.uniform(*level.pos_delay))
        self.jitter_rng = extra

    def delayed(self, line: PosLine) -> PosLine:
        """``line`` as it reaches the lane through a slow relay (delay + per-line jitter)."""
        lo, hi = self.level.pos_jitter
        extra = self.pos_delay + (float(self.jitter_rng.uniform(lo, hi)) if hi > 0 else 0.0)
        return line if extra <= 0 else PosLine(line.t + extra, line.kind, line.code,
                                               line.symbology)

    def scan(self, t: float, code: str, sym: str = "]E0") -> None:
        lat = float(self.rng.uniform(*self.level.latency))
        self.script.pos.append(self.delayed(PosLine(t + lat, "scan", code, sym)))

    def carry(self, speed: float, dwell: float, y: float) -> tuple[Path, float, float, float]:
        """Path from off the left edge, over the scanner (dwelling), into the bag."""
        x0, xs, xb, t = -140.0, (PICK_END + BAG_START) / 2 * MAIN_W, 0.8 * MAIN_W, self.t
        zin, zout = PICK_END * MAIN_W, BAG_START * MAIN_W
        t_in = t + (zin - x0) / speed
        t_mid = t + (xs - x0) / speed
        t_out = t_mid + dwell + (zout - xs) / speed
        t_end = t_mid + dwell + (xb - xs) / speed
        wob = float(self.rng.uniform(-30, 30))
        path = Path((t, t_mid, t_mid + dwell, t_end), (x0, xs, xs + 8, xb),
                    (y, y + wob, y + wob, y - wob))
        return path, t_in, t_out, t_end

    def hand(self, path: Path, item_h: int, covered: bool = False) -> Actor:
        dy = item_h / 2 + 18 if not covered else 0.0
        return Actor("hand", path, (150, 150), (224, 172, 140), offset=(0.0, dy))

    def hand_return(self, t_end: float, y: float, speed: float) -> float:
        """Empty hand goes back to the pick side; returns when it left the view."""
        back = Path((t_end, t_end + (0.8 * MAIN_W + 140) / speed), (0.8 * MAIN_W, -140),
                    (y, y + 20))
        self.script.actors.append(Actor("hand", back, (150, 150), (224, 172, 140)))
        return back.t[-1]

    def choose_kind(self) -> str:
        lv, u = self.level, float(self.rng.uniform())
        for kind, p in (("produce", lv.produce), ("stacked", lv.stack),
                        ("ticket_switch", lv.switch), ("covered", lv.cover),
                        ("skipped", lv.skip), ("double", lv.double)):
            if u < p:
                return kind
            u -= p
        return "scanned"

    def item(self, path: Path, kind: str, code_up: bool, offset=(0.0, 0.0)) -> Actor:
        rng = self.rng
        if kind == "produce":
            d = int(rng.integers(110, 160))
            return Actor("produce", path, (d, d), _colour(rng), offset=offset)
        size = (int(rng.integers(240, 300)), int(rng.integers(140, 190)))
        code = self.catalogue[int(rng.integers(0, len(self.catalogue)))]
        return Actor("item", path, size, _colour(rng), code=code, code_up=code_up,
                     offset=offset)

    def add_pass(self, kind: str | None = None) -> None:
        """One item pass of ``kind`` (None: drawn from the level's probabilities)."""
        lv, rng = self.level, self.rng
        if kind is None:
            kind = self.choose_kind()
            if kind == "produce" and rng.uniform() < 0.35:
                kind = "produce_skipped"
        honest = kind in ("scanned", "produce", "ticket_switch", "double", "covered", "stacked")
        dwell = float(rng.uniform(0.8, 1.3) if kind == "produce" else
                      rng.uniform(0.3, 0.7) if honest else rng.uniform(0.0, 0.12))
        speed = float(rng.uniform(*lv.speed))
        y = float(rng.uniform(0.4, 0.62) * MAIN_H)
        path, t_in, t_out, t_end = self.carry(speed, dwell, y)
        base = "produce" if kind.startswith("produce") else "item"
        up = kind in ("covered", "stacked") or bool(rng.uniform() < lv.code_up)
        first = self.item(path, base, up)
        actors = [first]
        if kind == "stacked":
            actors.insert(0, self.item(path, "item", True, offset=(-30.0, -105.0)))
        hand = self.hand(path, first.size[1], covered=(kind == "covered"))
        if kind == "covered":
            actors[0] = Actor(**{**first.__dict__, "label_covered": True})
        self.script.actors.extend(actors + [hand])
        n_before = len(self.script.pos)
        self.emit_scans(kind, actors, path, dwell)
        scanned = tuple(p.code for p in self.script.pos[n_before:] if p.kind == "scan")
        codes = tuple(a.code for a in actors if a.code)
        expect = {"skipped": "missed", "covered": "missed", "stacked": "missed",
                  "produce_skipped": "missed", "ticket_switch": "switch"}.get(kind, "none")
        visible = any(a.code_up and not a.label_covered for a in actors if a.code)
        self.script.truth.append(TruthPass(kind, path.t[0], t_in, t_out, t_end, codes,
                                           scanned, visible, expect))
        self.t = self.hand_return(t_end, y, speed) + float(rng.uniform(*lv.gap))

    def emit_scans(self, kind: str, actors: list[Actor], path: Path, dwell: float) -> None:
        t_read = float(self.rng.uniform(path.t[1], path.t[1] + max(dwell, 0.05)))
        if kind in ("scanned", "double", "stacked"):
            self.scan(t_read, actors[-1].code)
            if kind == "double":
                self.scan(t_read + float(self.rng.uniform(0.4, 0.9)), actors[-1].code)
        elif kind == "produce":
            self.scan(t_read + dwell * 0.5, str(self.rng.choice(["4011", "4046", "94225"])), "")
        elif kind == "ticket_switch":
            cheap = [c for c in self.catalogue if c != actors[-1].code]
            self.scan(t_read, cheap[int(self.rng.integers(0, len(cheap)))])

    def add_distractor(self, kind: str) -> None:
        rng, t = self.rng, self.t
        speed = float(rng.uniform(*self.level.speed))
        y = float(rng.uniform(0.45, 0.6) * MAIN_H)
        xs = (PICK_END + BAG_START) / 2 * MAIN_W
        x_to = xs if kind == "phone" else 0.82 * MAIN_W
        t1 = t + (x_to + 140) / speed
        t2 = t1 + float(rng.uniform(0.4, 0.9))
        path = Path((t, t1, t2, t2 + (x_to + 140) / speed), (-140, x_to, x_to, -140),
                    (y, y, y + 10, y))
        if kind == "phone":
            self.script.actors.append(Actor("phone", path, (90, 170), (25, 25, 30),
                                            offset=(0, -40)))
        self.script.actors.append(Actor("hand", path, (150, 150), (224, 172, 140),
                                        offset=(0, 80 if kind == "phone" else 0)))
        self.t = path.t[-1] + float(rng.uniform(*self.level.gap))

    def scenery(self) -> None:
        lv, rng, s = self.level, self.rng, self.script
        if lv.shadows:
            span = s.duration
            sp = Path((0.0, span), (float(rng.uniform(0.1, 0.4) * MAIN_W),
                                    float(rng.uniform(0.5, 0.9) * MAIN_W)), (MAIN_H, MAIN_H))
            s.actors.insert(0, Actor("shadow", sp, (520, 300), (0, 0, 0)))
            bag = Path((0.0, span), (0.86 * MAIN_W, 0.86 * MAIN_W), (0.3 * MAIN_H, 0.3 * MAIN_H))
            s.actors.insert(0, Actor("bag", bag, (200, 150), (150, 110, 70)))
        s.lighting = (lv.lighting, float(rng.uniform(0, 6.28)), float(rng.uniform(6, 14)))


def make_script(seed: int, level: LaneLevel | str = "easy", n_items: int = 8) -> LaneScript:
    """Draw one transaction of ``n_items`` passes (plus distractors) from ``seed``."""
    lv = LEVELS[level] if isinstance(level, str) else level
    b = _Builder(seed, lv, n_items)
    b.script.pos.append(b.delayed(PosLine(0.2, "txn_start")))
    for _ in range(n_items):
        u = float(b.rng.uniform())
        if u < lv.phone:
            b.add_distractor("phone")
        elif u < lv.phone + lv.empty_reach:
            b.add_distractor("reach")
        b.add_pass()
    b.script.duration = b.t + 1.5
    b.script.pos.append(b.delayed(PosLine(b.script.duration - 0.3, "txn_end")))
    b.script.pos.sort(key=lambda p: p.t)
    b.scenery()
    return b.script


def scripted(seed: int, kinds: list[str], level: LaneLevel | str = "easy") -> LaneScript:
    """A transaction whose passes are exactly ``kinds`` (for tests and the demo)."""
    lv = LEVELS[level] if isinstance(level, str) else level
    b = _Builder(seed, lv, len(kinds))
    b.script.pos.append(b.delayed(PosLine(0.2, "txn_start")))
    for kind in kinds:
        if kind in ("phone", "reach"):
            b.add_distractor(kind)
            continue
        b.add_pass(kind)
    b.script.duration = b.t + 1.5
    b.script.pos.append(b.delayed(PosLine(b.script.duration - 0.3, "txn_end")))
    b.script.pos.sort(key=lambda p: p.t)
    b.scenery()
    return b.script
