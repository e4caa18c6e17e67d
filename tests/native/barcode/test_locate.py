"""Localiser: native kernel vs pure twin (differential, seeded), wrapper validation, geometry."""
import math

import numpy as np
import pytest

from storeedge.native import _locate_py as twin
from storeedge.native import locate as L
from storeedge.native.barcode_synth import SceneParams, compose_scene
from storeedge.native.exc import NativeInputError

try:
    from storeedge.native import _locate_cy as native
except ImportError:                      # pragma: no cover - the build makes it in CI
    native = None

needs_native = pytest.mark.skipif(native is None, reason="compiled _locate_cy not built")


def _frames(seed: int, n: int):
    """Random frames: uniform noise, smooth ramps with steps, and a few read-only/odd sizes."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = int(rng.integers(1, 90)), int(rng.integers(1, 90))
        if i % 3 == 0:
            g = rng.integers(0, 256, (h, w), dtype=np.uint8)
        elif i % 3 == 1:
            g = (np.cumsum(rng.integers(-9, 10, (h, w)), axis=1) % 256).astype(np.uint8)
        else:
            g = np.where(rng.random((h, w)) < 0.5, 20, 230).astype(np.uint8)
        g.setflags(write=bool(i % 2))
        yield g


@needs_native
@pytest.mark.parametrize("cell", [2, 3, 8, 16])
@pytest.mark.parametrize("step", [1, 2, 3])
def test_cell_stats_native_equals_twin(cell, step):
    for g in _frames(cell * 10 + step, 40):
        assert np.array_equal(native.cell_stats(g, cell, step), twin.cell_stats(g, cell, step))


@needs_native
def test_cell_stats_against_direct_definition():
    g = np.random.default_rng(1).integers(0, 256, (20, 24), dtype=np.uint8)
    gi = g.astype(np.int64)
    sxx = 0
    for y in range(8, 16):             # cell (1, 2) with cell = 8, step = 1
        for x in range(16, 23):        # x = 23 is the frame border column
            sxx += (gi[y, x + 1] - gi[y, x - 1]) ** 2
    assert native.cell_stats(g, 8, 1)[0, 1, 2] == sxx == twin.cell_stats(g, 8, 1)[0, 1, 2]


@needs_native
@pytest.mark.parametrize("max_diff", [0, 2, 5])
def test_label_cells_native_equals_twin(max_diff):
    rng = np.random.default_rng(max_diff)
    for _ in range(60):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        mask = (rng.random((h, w)) < rng.uniform(0.2, 0.8)).astype(np.uint8)
        bins = rng.integers(0, 36, (h, w)).astype(np.int32)
        a, na = native.label_cells(mask, bins, 36, max_diff)
        b, nb = twin.label_cells(mask, bins, 36, max_diff)
        assert na == nb and np.array_equal(a, b)


def test_label_cells_wraps_orientation_bins():
    mask = np.ones((1, 3), np.uint8)
    bins = np.array([[35, 0, 1]], np.int32)          # 175, 0, 5 degrees: one line
    labels, n = L.label_cells(mask, bins, 36, 1)
    assert n == 1 and labels.tolist() == [[1, 1, 1]]
    labels, n = L.label_cells(mask, np.array([[0, 18, 0]], np.int32), 36, 2)
    assert n == 3


@needs_native
def test_warp_affine_native_equals_twin_within_one_level():
    rng = np.random.default_rng(5)
    for g in _frames(7, 30):
        a = rng.uniform(-math.pi, math.pi)
        m = np.array([math.cos(a), -math.sin(a), rng.uniform(-5, 50),
                      math.sin(a), math.cos(a), rng.uniform(-5, 50)])
        oh, ow = int(rng.integers(1, 60)), int(rng.integers(1, 60))
        x = native.warp_affine(np.ascontiguousarray(g), m, oh, ow).astype(int)
        y = twin.warp_affine(np.ascontiguousarray(g), m, oh, ow).astype(int)
        assert np.abs(x - y).max() <= 1
        assert np.mean(x == y) > 0.99



@needs_native
def test_warp_affine_rows_crossing_the_frame_edge_equal_twin():
    """Long strips that start, end or run outside the frame: each row is split into its
    clamped ends and its inside run (fast path); all agree with the twin within one level,
    on rotated, axis-aligned and scaled maps."""
    rng = np.random.default_rng(17)
    g = np.ascontiguousarray(next(iter(_frames(23, 1))))
    h, w = g.shape
    for k in range(120):
        a = (0.0, math.pi / 2, -math.pi / 2)[k % 3] if k % 4 == 0 else rng.uniform(-math.pi,
                                                                                   math.pi)
        sc = (1.0, 0.5, 3.0)[k % 3]
        m = np.array([math.cos(a), -math.sin(a) * sc, rng.uniform(-2 * w, 2 * w),
                      math.sin(a), math.cos(a) * sc, rng.uniform(-2 * h, 2 * h)])
        oh, ow = int(rng.integers(1, 40)), int(rng.integers(1, 4 * max(h, w)))
        x = native.warp_affine(g, m, oh, ow).astype(int)
        y = twin.warp_affine(g, m, oh, ow).astype(int)
        assert np.abs(x - y).max() <= 1
        assert np.mean(x == y) > 0.99

@needs_native
def test_line_edges_native_equals_twin():
    rng = np.random.default_rng(11)
    for g in _frames(13, 200):
        g = np.ascontiguousarray(g)
        x0, y0 = (int(v) for v in rng.integers(-2 << 16, 90 << 16, 2))
        dx, dy = (int(v) for v in rng.integers(-1 << 16, 1 << 16, 2))
        n, win = int(rng.integers(0, 150)), int(rng.choice([3, 9, 15]))
        line = (x0, y0, dx, dy)
        assert np.array_equal(native.line_edges(g, line, n, win),
                              twin.line_edges(g, line, n, win))


@needs_native
def test_edge_run_native_equals_twin():
    rng = np.random.default_rng(17)
    hits = 0
    for k in range(400):
        widths = rng.integers(1, 9, int(rng.integers(1, 50)))
        row = np.repeat(rng.choice([25, 225], widths.size), widths).astype(np.uint8)
        if k % 3 == 0:
            row = rng.integers(0, 256, row.size).astype(np.uint8)
        g = np.ascontiguousarray(np.tile(row, (3, 1)))
        n = int(rng.integers(0, row.size + 30))
        lo = int(rng.integers(-5, n + 1))
        hi = int(rng.integers(lo, n + 10))
        win = int(rng.choice([3, 9, 15]))
        args = (g, (-5 << 16, 1 << 16, 1 << 16, 0), n, win, lo, hi)
        a, b = native.edge_run(*args), twin.edge_run(*args)
        assert a == b
        hits += a[0] > 0
    assert hits > 50                      # the comparison covered real edge runs


def _scene_fields(seed: int):
    """Cell statistics and features of a generated scene (codes, clutter, noise)."""
    frame, _ = compose_scene([("4006381333931", "EAN-13"), ("9638507", "EAN-8")],
                             np.random.default_rng(seed), SceneParams(size=(240, 320)))
    stats = native.cell_stats(frame, 8, 2)
    return frame, stats


@needs_native
@pytest.mark.parametrize("seed", range(4))
def test_cell_energy_and_features_native_equal_twin(seed):
    rng = np.random.default_rng(seed)
    frame, stats = _scene_fields(seed)
    for s in (stats, rng.integers(-2000, 60000, stats.shape).astype(np.int64)):
        s = np.ascontiguousarray(s)
        for a, b in zip(native.cell_energy(s, 16.0), twin.cell_energy(s, 16.0)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
        energy = native.cell_energy(s, 16.0)[0]
        thr = float(np.percentile(energy, 50))
        for a, b in zip(native.cell_features(s, energy, 16.0, thr),
                        twin.cell_features(s, energy, 16.0, thr)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
        coh, angle, _, c2, s2 = native.cell_features(s, energy, 16.0, thr)
        assert np.count_nonzero(coh) > 0
        sel = coh > 0                 # c2, s2: energy x coherence along the doubled angle
        np.testing.assert_allclose(c2[sel], (energy * coh * np.cos(2 * angle))[sel],
                                   rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(s2[sel], (energy * coh * np.sin(2 * angle))[sel],
                                   rtol=1e-9, atol=1e-6)


@needs_native
@pytest.mark.parametrize("seed", range(6))
def test_component_statistics_native_equal_twin(seed):
    """Random masks, weights and angles: per-component 1-D and 2-D statistics agree."""
    rng = np.random.default_rng(100 + seed)
    h, w = int(rng.integers(1, 60)), int(rng.integers(1, 60))
    mask = (rng.random((h, w)) < rng.uniform(0.2, 0.8)).astype(np.uint8)
    bins = rng.integers(0, 36, (h, w)).astype(np.int32)
    labels, n = native.label_cells(mask, bins, 36, 2)
    weight, energy, texture = (rng.uniform(0, 500, (h, w)) for _ in range(3))
    angle = rng.uniform(-math.pi / 2, math.pi / 2, (h, w))
    c2, s2 = weight * np.cos(2 * angle), weight * np.sin(2 * angle)
    for min_cells in (1, 4):
        a = native.linear_components(labels, n, weight, c2, s2, 8, min_cells)
        b = twin.linear_components(labels, n, weight, c2, s2, 8, min_cells)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)
    fields = np.stack([energy, c2, s2, texture])
    a = native.matrix_components(labels, n, mask, fields)
    b = twin.matrix_components(labels, n, mask, fields)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)
    assert n == 0 or a[1:, 0].sum() == mask.sum()


@needs_native
@pytest.mark.parametrize("seed", range(4))
def test_linear_and_matrix_boxes_native_equal_twin(seed):
    """Box refit and 2-D screening on random component rows over generated scenes."""
    rng = np.random.default_rng(200 + seed)
    frame, _ = _scene_fields(seed)
    h, w = frame.shape
    ang = rng.uniform(-math.pi / 2, math.pi / 2, 40)
    u = rng.uniform(0, max(h, w), (40, 2))
    v = rng.uniform(0, max(h, w), (40, 2))
    comps = np.stack([ang, u.min(1), u.max(1), v.min(1), v.max(1),
                      rng.uniform(1, 1e4, 40)], axis=1)
    prm = np.array([8.0, 0.12, 60.0, float(rng.integers(4, 23)), 0.1])
    for keep in (0, 3, 40):
        a = native.linear_boxes(frame, comps, prm, keep)
        b = twin.linear_boxes(frame, comps, prm, keep)
        assert a.shape == b.shape and a.shape[0] <= keep
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)
        assert keep == 0 or a.shape[0] > 0           # some boxes pass the refit
    energetic = (rng.random((h // 8, w // 8)) < 0.5).astype(np.uint8)
    y = np.sort(rng.integers(0, h // 8 + 1, (40, 2)), axis=1)
    x = np.sort(rng.integers(0, w // 8 + 1, (40, 2)), axis=1)
    comps2 = np.ascontiguousarray(np.stack([y[:, 0], y[:, 1] + 1, x[:, 0], x[:, 1] + 1,
                                            rng.uniform(0, 1e4, 40)], axis=1), np.float64)
    comps2[:, 1] = np.minimum(comps2[:, 1], h // 8)
    comps2[:, 3] = np.minimum(comps2[:, 3], w // 8)
    prm2 = np.array([8.0, 0.25, float(rng.integers(2, 7)), 60.0])
    a = native.matrix_boxes(frame, energetic, comps2, prm2)
    b = twin.matrix_boxes(frame, energetic, comps2, prm2)
    assert a.shape == b.shape and 0 < a.shape[0]
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)


def test_edge_run_spans_a_code_split_by_wide_elements():
    widths = [2, 2, 2, 2, 2, 2, 2, 2, 10, 2, 2, 2, 2, 2, 2, 2, 2]   # a 5-module wide bar
    row = np.repeat(np.array([30, 220] * 9)[:len(widths)], widths).astype(np.uint8)
    row = np.concatenate([np.full(60, 220, np.uint8), row, np.full(60, 220, np.uint8)])
    g = np.ascontiguousarray(np.tile(row, (3, 1)))
    count, lo, hi, m2 = L._k.edge_run(g, (0, 1 << 16, 1 << 16, 0), row.size, 5, 60, 75)
    assert m2 == 4 and 59 <= lo <= 62 and 100 <= hi <= 104 and count >= 14
    # a gap of 8 spacings (a quiet zone) stops the run
    wide = np.ascontiguousarray(np.tile(np.concatenate([row[:80], np.full(16, 220, np.uint8),
                                                        row[80:]]), (3, 1)))
    _, lo2, hi2, _ = L._k.edge_run(wide, (0, 1 << 16, 1 << 16, 0), wide.shape[1], 5, 60, 75)
    assert hi2 < 90


def test_line_edges_counts_bars():
    row = np.repeat(np.tile([30, 220], 20), 4).astype(np.uint8)      # 20 bars, 4 px each
    g = np.ascontiguousarray(np.tile(row, (5, 1)))
    edges = L._k.line_edges(g, (0, 2 << 16, 1 << 16, 0), g.shape[1], 9)
    assert 35 <= len(edges) <= 39                                   # 39 inner edges
    flat = np.full((5, 160), 77, np.uint8)
    assert len(L._k.line_edges(flat, (0, 2 << 16, 1 << 16, 0), 160, 9)) == 0


@needs_native
@pytest.mark.parametrize("seed", range(3))
def test_locate_pipeline_same_on_both_backends(seed, monkeypatch):
    """The whole localiser gives identical boxes with either kernel module."""
    frame, _ = compose_scene([("4006381333931", "EAN-13"), ("9638507", "EAN-8")],
                             np.random.default_rng(seed), SceneParams(size=(360, 640),
                                                                      module_px=(2, 2.5)))
    results = []
    for mod in (native, twin):
        monkeypatch.setattr(L, "_k", mod)
        results.append(L.locate(frame, 8))
    assert [c.kind for c in results[0]] == [c.kind for c in results[1]]
    assert len(results[0]) > 0
    np.testing.assert_allclose([c[1:] for c in results[0]], [c[1:] for c in results[1]],
                               rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("angle", [0, 25, 60, 90, 150])
def test_linear_candidate_angle_and_place(angle):
    params = SceneParams(size=(480, 640), module_px=(2.5, 2.5), angle_deg=(angle, angle),
                         perspective=0.0, blur_px=(0, 0), glare_prob=0, clutter=5)
    frame, truths = compose_scene([("4006381333931", "EAN-13")], np.random.default_rng(angle),
                                  params)
    cands = [c for c in L.locate(frame, 8) if c.kind == "linear"]
    assert cands
    best = min(cands, key=lambda c: math.dist(c.center, truths[0].center))
    assert math.dist(best.center, truths[0].center) < 30
    # gradient direction across the bars = the code's x axis, modulo 180 degrees
    diff = (math.degrees(best.angle) - angle) % 180
    assert min(diff, 180 - diff) < 6


def test_matrix_candidate_for_qr():
    from storeedge.native.barcode_synth import door_credential
    params = SceneParams(size=(480, 640), module_px=(2, 2), angle_deg=(20, 20), glare_prob=0,
                         blur_px=(0, 0), clutter=5)
    frame, truths = compose_scene([(door_credential(np.random.default_rng(1)), "QRCode")],
                                  np.random.default_rng(2), params)
    cands = [c for c in L.locate(frame, 8) if c.kind == "matrix"]
    assert any(math.dist(c.center, truths[0].center) < 40 for c in cands)


def test_budget_is_respected_and_zero_allowed():
    frame, _ = compose_scene([("4006381333931", "EAN-13"), ("9638507", "EAN-8"),
                              ("0123456", "UPC-E")], np.random.default_rng(3))
    assert len(L.locate(frame, 1)) == 1
    assert L.locate(frame, 0) == []


def test_kinds_limit_the_search():
    from storeedge.native.barcode_synth import door_credential
    frame, _ = compose_scene([("4006381333931", "EAN-13"),
                              (door_credential(np.random.default_rng(3)), "QRCode")],
                             np.random.default_rng(8), SceneParams(module_px=(2.5, 2.5)))
    both = {c.kind for c in L.locate(frame, 8)}
    assert both == {"linear", "matrix"}
    assert {c.kind for c in L.locate(frame, 8, kinds=("matrix",))} == {"matrix"}
    assert {c.kind for c in L.locate(frame, 8, kinds=("linear",))} == {"linear"}
    with pytest.raises(NativeInputError):
        L.locate(frame, 8, kinds=("round",))


def test_flat_and_tiny_frames_have_no_candidates():
    assert L.locate(np.full((720, 1280), 128, np.uint8)) == []
    for shape in [(1, 1), (3, 2), (8, 8), (15, 700)]:
        assert L.locate(np.zeros(shape, np.uint8)) == []


@pytest.mark.parametrize("bad", [np.zeros((0, 5), np.uint8), np.zeros((4, 4), np.float64),
                                 np.zeros((4, 4, 1), np.uint8), "x", None])
def test_bad_frames_rejected(bad):
    with pytest.raises(NativeInputError):
        L.locate(bad)


def test_bad_parameters_rejected():
    g = np.zeros((32, 32), np.uint8)
    with pytest.raises(NativeInputError):
        L.locate(g, -1)
    with pytest.raises(NativeInputError):
        L.cell_field(g, 1)
    with pytest.raises(NativeInputError):
        L.warp_affine(g, [1, 0, 0, 0, 1], 4, 4)
    with pytest.raises(NativeInputError):
        L.warp_affine(g, [1, 0, 0, 0, 1, float("nan")], 4, 4)
    with pytest.raises(NativeInputError):
        L.warp_affine(g, [1, 0, 0, 0, 1, 0], 0, 4)
    with pytest.raises(NativeInputError):
        L.label_cells(np.zeros((2, 2)), np.zeros((3, 2)), 36, 1)


def test_backend_matches_environment():
    from storeedge.native._backend import pure_forced
    assert L.BACKEND == ("python" if pure_forced() else "cython")


def test_energy_threshold_follows_sensor_noise():
    p = L.LocateParams()
    rng = np.random.default_rng(4)
    flat = np.full((360, 640), 120.0)
    for sigma, lo, hi in ((0.0, 60, 60), (3.0, 60, 100), (10.0, 500, 1200)):
        g = np.clip(flat + rng.normal(0, sigma, flat.shape), 0, 255).astype(np.uint8) \
            if sigma else flat.astype(np.uint8)
        _, energy = L._cell_energy(g, 8)
        assert lo <= L.energy_threshold(energy, p) <= hi, sigma
    # a frame mostly filled by a code keeps the floor: flat quiet zone and module interiors
    from storeedge.native.barcode_synth import render_code
    code = np.pad(render_code("4006381333931", "EAN-13", 3), 20, constant_values=255)
    _, energy = L._cell_energy(code, 8)
    assert L.energy_threshold(energy, p) == p.min_energy


def test_energy_threshold_for_codes_filling_the_frame():
    """No flat cell to measure the noise on: a 1-D code filling the frame keeps the floor
    low through the isotropic energy, a 2-D code through the cap."""
    from storeedge.native.barcode_synth import render_code
    p = L.LocateParams()
    bars = np.repeat(render_code("4006381333931", "EAN-13", 4)[:, 40:-40], 2, axis=0)[:400]
    stats, energy = L._cell_energy(np.ascontiguousarray(bars), 8)
    assert L.energy_threshold(energy, p) > 1000                     # raised by the bars
    assert L.energy_threshold(energy, p, L.isotropic_energy(stats, 8)) <= 2 * p.min_energy
    qr = np.ascontiguousarray(render_code("x" * 120, "QRCode", 2)[8:-8, 8:-8])
    stats, energy = L._cell_energy(qr, 8)
    assert L.energy_threshold(energy, p, L.isotropic_energy(stats, 8)) \
        == p.noise_factor * p.max_noise


def test_percentile_by_one_selection_equals_numpy():
    """The noise percentile (one selection and a min scan) is numpy's linear-interpolation
    percentile, ties and tiny arrays included."""
    rng = np.random.default_rng(29)
    for n in (1, 2, 3, 10, 14400):
        for a in (rng.gamma(1.0, 100.0, n), rng.integers(0, 4, n).astype(np.float64)):
            for q in (0, 20, 33.3, 50, 99.9, 100):
                want = float(np.percentile(a, q))
                assert abs(L._percentile(a, q) - want) <= 1e-9 * max(1.0, abs(want)), (n, q)


def test_share_kinds_gives_each_kind_its_share_first():
    def cand(kind, score):
        return L.Candidate(kind, 0.0, 0.0, 10.0, 10.0, 0.0, score)
    lin = [cand("linear", s) for s in (900.0, 800.0, 700.0, 600.0, 500.0)]
    mat = [cand("matrix", s) for s in (50.0, 40.0, 30.0)]
    ranked = sorted(lin + mat, key=lambda c: -c.score)
    assert L.share_kinds(ranked, 4, 0.5) == [lin[0], lin[1], mat[0], mat[1]]
    assert L.share_kinds(ranked, 8, 0.4) == [lin[0], lin[1], lin[2], mat[0], mat[1], mat[2],
                                             lin[3], lin[4]]   # 3 each, then by score
    assert L.share_kinds(ranked, 4, 0.4) == [lin[0], mat[0], lin[1], lin[2]]   # at least 1
    assert L.share_kinds(ranked, 4, 0.0) == lin[:4]             # plain top-k by score
    assert L.share_kinds(lin, 4, 0.5) == lin[:4]                 # one kind: no slot wasted
    assert L.share_kinds(ranked, 0, 0.5) == []


def _band_component(grad_deg: float, axis_deg: float, length_cells: int = 60,
                    width_cells: int = 3):
    """linear_components row of one component: a band of cells along ``axis_deg`` whose
    gradients all point along ``grad_deg`` (a code whose bars are fanned or sheared)."""
    labels = np.zeros((90, 160), np.int32)
    ax = math.radians(axis_deg)
    for t in range(length_cells):
        for s in range(width_cells):
            x = 80 + (t - length_cells / 2) * math.cos(ax) - (s - width_cells / 2) * math.sin(ax)
            y = 45 + (t - length_cells / 2) * math.sin(ax) + (s - width_cells / 2) * math.cos(ax)
            labels[int(round(y)), int(round(x))] = 1
    weight = np.where(labels > 0, 100.0, 0.0)
    a = math.radians(grad_deg)
    st = L._k.linear_components(labels, 1, weight, weight * math.cos(2 * a),
                                weight * math.sin(2 * a), 8, 4)
    return st[1:2]


@pytest.mark.parametrize("grad_deg,axis_deg", [(-20.0, 0.0), (15.0, 0.0), (70.0, 90.0),
                                               (-30.0, -10.0)])
def test_sheared_component_is_scanned_along_its_long_axis(grad_deg, axis_deg):
    """A long band of cells whose gradients are 15-30 degrees off the band's axis (bars fanned
    out by perspective): the table row follows the band, centred on it, about as long."""
    st = _band_component(grad_deg, axis_deg)
    row = L._follow_shear(st, L.LocateParams())[0]
    d = (row[0] - math.radians(axis_deg) + math.pi / 2) % math.pi - math.pi / 2
    assert abs(d) < math.radians(1.5)
    centre = np.array([(row[1] + row[2]) / 2, (row[3] + row[4]) / 2])
    rot = np.array([[math.cos(row[0]), -math.sin(row[0])], [math.sin(row[0]), math.cos(row[0])]])
    assert np.allclose(rot @ centre, [80.5 * 8, 45.5 * 8], atol=8)
    assert 0.85 * 60 * 8 < row[2] - row[1] < 1.15 * 60 * 8
    assert row[4] - row[3] < 8 * 8


@pytest.mark.parametrize("grad_deg,axis_deg,why", [
    (2.0, 0.0, "bars square to the axis"), (-60.0, 0.0, "axis too far from the gradient"),
    (-20.0, 0.0, "not elongated")])
def test_unsheared_components_keep_their_gradient_row(grad_deg, axis_deg, why):
    """Bars square to the long axis (an ordinary code), an axis too far off to be a fanned
    code, or a blob too short to have an axis: the row keeps the gradient angle."""
    st = _band_component(grad_deg, axis_deg, *((8, 6) if why == "not elongated" else ()))
    assert np.array_equal(L._follow_shear(st, L.LocateParams()), st[:, 1:7]), why
