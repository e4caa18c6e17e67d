"""MotionDetector: detection, lighting guard, background following, native vs twin, errors."""
from __future__ import annotations

import numpy as np
import pytest

from storeedge.native import _motion_py as twin
from storeedge.native import motion as mo
from storeedge.native.exc import NativeInputError
from storeedge.native.motion import Box, MotionDetector

NATIVE = mo.BACKEND == "cython"


def scene(w=320, h=180, seed=0):
    """Textured static background with sensor noise (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 90 + 40 * np.sin(xx / 17.0) * np.cos(yy / 23.0) + rng.normal(0, 8, (h, w))
    return base


def frame(base, rng, noise=2.0):
    return np.clip(base + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8)


def test_static_scene_has_no_motion():
    rng = np.random.default_rng(1)
    base = scene()
    det = MotionDetector(320, 180)
    results = [det.update(frame(base, rng)) for _ in range(10)]
    assert not any(r.motion for r in results)
    assert not any(r.lighting_change for r in results)
    assert results[-1].changed_fraction < 0.001


def test_moving_object_is_boxed_where_it_is():
    rng = np.random.default_rng(2)
    base = scene()
    det = MotionDetector(320, 180, downscale=4, cell=4)      # 16-pixel cells
    for _ in range(3):
        det.update(frame(base, rng))
    moved = base.copy()
    moved[64:112, 160:208] = 230                             # a bright parcel appears
    res = det.update(frame(moved, rng))
    assert res.motion and not res.lighting_change
    assert res.boxes == [Box(160, 64, 48, 48)]
    assert res.cells.sum() == 9
    assert res.fractions[4:7, 10:13].min() > 0.9


def test_two_objects_give_two_boxes():
    rng = np.random.default_rng(3)
    base = scene()
    det = MotionDetector(320, 180, downscale=4, cell=4)
    det.update(frame(base, rng))
    moved = base.copy()
    moved[0:16, 0:32] = 250
    moved[160:180, 288:320] = 5
    res = det.update(frame(moved, rng))
    assert sorted(res.boxes) == [Box(0, 0, 32, 16), Box(288, 160, 32, 20)]


def test_lighting_flip_is_not_motion_and_background_restarts():
    rng = np.random.default_rng(4)
    base = scene()
    det = MotionDetector(320, 180)
    det.update(frame(base, rng))
    res = det.update(frame(base * 0.5, rng))                 # lights off
    assert res.lighting_change and not res.motion and res.boxes == []
    after = det.update(frame(base * 0.5, rng))
    assert not after.motion and not after.lighting_change


def test_background_follows_slow_drift():
    rng = np.random.default_rng(5)
    base = scene()
    det = MotionDetector(320, 180, alpha=0.2, threshold=15)
    motion = []
    for k in range(40):
        motion.append(det.update(frame(base + k * 1.0, rng)).motion)   # +1 level per frame
    assert not any(motion)
    bg = det.background.astype(float) / 256
    small = (base + 39).reshape(45, 4, 80, 4).mean(axis=(1, 3))
    assert np.abs(bg - small).mean() < 6


def test_first_frame_only_primes_and_reset():
    rng = np.random.default_rng(6)
    det = MotionDetector(64, 48, downscale=2, cell=4)
    first = det.update(frame(scene(64, 48), rng))
    assert not first.motion and not first.lighting_change
    det.reset()
    again = det.update(np.zeros((48, 64), np.uint8))
    assert not again.motion and not again.lighting_change


def test_odd_sizes_partial_cells_and_strided_read_only_input():
    rng = np.random.default_rng(7)
    base = scene(101, 67)
    det = MotionDetector(101, 67, downscale=3, cell=5)      # 33x22 bg px, 7x5 cells
    assert det.update(frame(base, rng)).fractions.shape == (5, 7)
    moved = base.copy()
    moved[60:66, 96:99] = 255                              # inside the last partial cell
    big = np.zeros((67, 300), np.uint8)
    big[:, 100:201] = frame(moved, rng)
    view = big[:, 100:201]
    view.setflags(write=False)
    res = det.update(view)
    assert res.motion and res.cells[4, 6] and res.cells.sum() == 1
    assert res.boxes == [Box(90, 60, 11, 7)]


def _run_both(w, h, kw, frames):
    a, b = MotionDetector(w, h, **kw), MotionDetector(w, h, **kw)
    out = []
    for f in frames:
        ra = a.update(f)
        saved = mo._kernel
        mo._kernel = twin
        try:
            rb = b.update(f)
        finally:
            mo._kernel = saved
        out.append((ra, rb, a.background.copy(), b.background.copy()))
    return out


@pytest.mark.skipif(not NATIVE, reason="compares the compiled kernel with its twin")
@pytest.mark.parametrize("w,h,kw", [
    (320, 180, {}),
    (97, 61, dict(downscale=3, cell=5, alpha=0.3, threshold=5)),
    (128, 96, dict(downscale=8, cell=1, alpha=1.0)),
    (130, 70, dict(downscale=16, cell=2, threshold=1)),
    (64, 40, dict(downscale=1, cell=7, alpha=0.01)),
])
def test_native_matches_twin_exactly(w, h, kw):
    rng = np.random.default_rng(w + h)
    base = rng.integers(0, 256, (h, w)).astype(float)
    frames = [np.clip(base + rng.normal(0, 30, base.shape) * (k % 2), 0, 255).astype(np.uint8)
              for k in range(5)]
    for ra, rb, bga, bgb in _run_both(w, h, kw, frames):
        assert np.array_equal(bga, bgb)
        assert np.array_equal(ra.fractions, rb.fractions)
        assert ra.changed_fraction == rb.changed_fraction and ra.boxes == rb.boxes


@pytest.mark.parametrize("kw,match", [
    (dict(width=0, height=10), "width"),
    (dict(width=10, height=10, downscale=0), "downscale"),
    (dict(width=10, height=10, downscale=16), "smaller"),
    (dict(width=10, height=10, cell=65), "cell"),
    (dict(width=10, height=10, threshold=0), "threshold"),
    (dict(width=10, height=10, alpha=2.0), "alpha"),
    (dict(width=10, height=10, cell_fraction=0), "cell_fraction"),
    (dict(width=10, height=10, lighting_fraction=1.5), "lighting_fraction"),
    (dict(width=10.0, height=10), "width"),
])
def test_bad_parameters(kw, match):
    with pytest.raises(NativeInputError, match=match):
        MotionDetector(**kw)


def test_bad_frames():
    det = MotionDetector(32, 16)
    with pytest.raises(NativeInputError, match="16x32"):
        det.update(np.zeros((32, 16), np.uint8))
    with pytest.raises(NativeInputError, match="uint8"):
        det.update(np.zeros((16, 32), np.float32))
    with pytest.raises(NativeInputError, match="2-D"):
        det.update(np.zeros((16, 32, 3), np.uint8))


def _flood_boxes(mask):
    """Brute-force 8-connected flood fill (reference for the run-based labelling)."""
    seen = np.zeros_like(mask)
    out = []
    for r, c in zip(*np.nonzero(mask)):
        if seen[r, c]:
            continue
        stack, cells = [(r, c)], []
        seen[r, c] = True
        while stack:
            i, j = stack.pop()
            cells.append((i, j))
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    a, b = i + di, j + dj
                    if 0 <= a < mask.shape[0] and 0 <= b < mask.shape[1] and mask[a, b] \
                            and not seen[a, b]:
                        seen[a, b] = True
                        stack.append((a, b))
        rs, cs = zip(*cells)
        out.append((min(rs), min(cs), max(rs) + 1, max(cs) + 1))
    return sorted(out)


def test_cell_grouping_matches_flood_fill():
    rng = np.random.default_rng(12)
    shapes = [np.eye(6, dtype=bool), np.eye(6, dtype=bool)[::-1],
              np.array([[1, 0, 1], [1, 0, 1], [1, 1, 1]], bool),       # U joins at the bottom
              np.array([[1, 1, 1], [0, 0, 1], [1, 1, 1], [1, 0, 0]], bool)]
    shapes += [rng.random((23, 40)) < p for p in (0.05, 0.2, 0.45, 0.7)]
    for mask in shapes:
        assert sorted(mo._components(mask)) == _flood_boxes(mask)
