"""Checkout in a real store: a late POS (timing learned, kept across restarts), a stalled POS,
a dark noisy lane (degraded, no guesses), single misreads (never an alert)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from storeedge.drivers.camera.lane import LEVELS, scripted
from storeedge.drivers.camera.synthetic import SyntheticLaneCamera
from storeedge.firmware.checkout.config import MatchSection
from storeedge.firmware.checkout.matcher import PosScan, TransactionMatcher
from storeedge.firmware.checkout.sim import LaneSession, pos_records, run_lane
from storeedge.firmware.checkout.timing import PosTiming, TimingParams
from storeedge.firmware.checkout.tracker import CodeSeen, ItemPass

LATE = dataclasses.replace(LEVELS["easy"], name="late", pos_delay=(1.5, 1.5))


def _alerts(run):
    return [b for b, _ in run.events if b.EVENT_TYPE in ("checkout.nudge", "checkout.escalate")]


def _statuses(run):
    return run.of_type("checkout.lane_status")


def test_late_pos_is_learned_then_no_false_alert(detector, tmp_path):
    state = tmp_path / "pos-timing.json"
    session = LaneSession(detector, timing=PosTiming(path=str(state)))
    first = session.run(SyntheticLaneCamera(scripted(41, ["scanned"] * 4, LATE), fps=15.0))
    learned = _statuses(first)[-1]
    assert learned.timing_samples >= 2
    assert 1.2 <= learned.pos_delay_s <= 2.2          # 1.5 s relay + scanner latency
    assert state.exists()                              # kept for the next start
    # a restart: the lane reads its timing back, then serves an honest basket and a skip
    session.timing = PosTiming(path=str(state))
    kinds = ["scanned", "scanned", "produce", "scanned", "skipped", "scanned"]
    cam = SyntheticLaneCamera(scripted(42, kinds, LATE), fps=15.0)
    run = session.run(cam)
    alerts = _alerts(run)
    assert [a.reason for a in alerts] == ["missed_scan"]
    skipped = next(t for t in cam.script.truth if t.kind == "skipped")
    assert abs(alerts[0].evidence.pass_end - (1_795_000_000.0 + skipped.t_end)) < 0.5
    assert alerts[0].latency_s <= _statuses(run)[-1].pos_delay_s + 1.0
    assert [n.kind for n in run.of_type("checkout.scan_note")] == []


def test_same_late_pos_without_learning_cries_wolf(detector):
    """The control: the configured 0.8 s window on the same late POS alerts on honest items
    (what the learned timing fixes), so the test above can fail."""
    cam = SyntheticLaneCamera(scripted(42, ["scanned", "scanned", "scanned"], LATE), fps=15.0)
    frozen = PosTiming(TimingParams(cold_post_s=0.0))   # the configured window, always
    frozen.add = lambda *a: False                        # never learns
    run = run_lane(cam, detector, timing=frozen)
    assert len(_alerts(run)) >= 2


def test_new_lane_on_a_late_pos_does_not_cry_wolf_while_learning(detector):
    cam = SyntheticLaneCamera(scripted(48, ["scanned", "scanned", "skipped", "scanned"], LATE),
                              fps=15.0)
    run = run_lane(cam, detector)                        # nothing learned before
    assert [a.reason for a in _alerts(run)] == ["missed_scan"]
    assert _statuses(run)[-1].timing_samples >= 2


def test_stalled_pos_is_reported_not_alerted(detector):
    kinds = ["scanned"] * 7
    cam = SyntheticLaneCamera(scripted(43, kinds), fps=15.0)
    records = [r for r in pos_records(cam.script) if r[1] == "txn_start"]   # then silence
    run = run_lane(cam, detector, pos=records)
    stalled = [s for s in _statuses(run) if s.state == "pos_stalled"]
    assert len(stalled) == 1 and "no POS line" in stalled[0].reason
    assert len(_alerts(run)) <= 3                      # before the stall was evident
    assert run.lane.stats.unverified >= 3
    assert run.lane.stats.pos_stalls == 1


def test_pos_coming_back_clears_the_stall(detector):
    cam = SyntheticLaneCamera(scripted(44, ["scanned"] * 7), fps=15.0)
    recs = pos_records(cam.script)
    scans = [r for r in recs if r[1] not in ("txn_start", "txn_end")]
    late_scan = scans[-1]
    records = [r for r in recs if r[1] == "txn_start"] + [late_scan]
    run = run_lane(cam, detector, pos=records)
    states = [s.state for s in _statuses(run)]
    assert "pos_stalled" in states
    assert states[states.index("pos_stalled") + 1] == "ok"


def test_dark_noisy_lane_is_degraded_and_does_not_guess(detector):
    dark = dataclasses.replace(LEVELS["easy"], name="dark", brightness=0.22, noise=16.0)
    cam = SyntheticLaneCamera(scripted(45, ["skipped", "scanned", "skipped", "scanned"], dark),
                              fps=15.0)
    run = run_lane(cam, detector)
    degraded = [s for s in _statuses(run) if s.state == "degraded"]
    assert degraded and "noise" in degraded[0].reason
    assert degraded[0].noise_sigma > 10.0
    assert _alerts(run) == []


def test_half_light_noise_8_is_not_degraded_and_still_alerts(detector):
    dim = dataclasses.replace(LEVELS["easy"], name="dim", brightness=0.5, noise=8.0)
    cam = SyntheticLaneCamera(scripted(46, ["scanned", "skipped", "scanned"], dim), fps=15.0)
    run = run_lane(cam, detector)
    assert all(s.state == "ok" for s in _statuses(run))
    assert [a.reason for a in _alerts(run)] == ["missed_scan"]


def _pass(i, t0, codes):
    cs = tuple(CodeSeen(f"01:{c:014d}", str(c), "EAN-13", reads) for c, reads in codes)
    return ItemPass(i, t0 - 0.8, t0, t0 + 0.5, t0 + 0.9, cs, None, None, True)


def _scan(t, code):
    return PosScan(t, f"01:{code:014d}", str(code), f"]E0{code}")


def test_single_misread_never_switches_or_adds_a_slot():
    m = TransactionMatcher(MatchSection())
    m.add_pass(_pass(1, 2.0, [(111, 3), (999, 1)]))   # honest item + one phantom read
    m.add_pass(_pass(2, 6.0, [(555, 1)]))              # only a single (wrong) read
    m.add_scan(_scan(2.4, 111))
    m.add_scan(_scan(6.3, 222))
    outcomes, notes = m.tick(20.0)
    assert [o.kind for o in outcomes] == ["ok", "ok"]
    assert m.phantoms == 2 and notes == []


def test_two_agreeing_reads_still_catch_a_ticket_switch():
    m = TransactionMatcher(MatchSection())
    m.add_pass(_pass(1, 2.0, [(111, 2)]))
    m.add_scan(_scan(2.4, 222))
    outcomes, _ = m.tick(20.0)
    assert [o.kind for o in outcomes] == ["switch"]


def test_single_read_agreeing_with_the_pos_is_evidence():
    m = TransactionMatcher(MatchSection())
    m.add_pass(_pass(1, 2.0, [(111, 1)]))
    m.add_scan(_scan(2.4, 111))
    (o,), _ = m.tick(20.0)
    assert o.kind == "ok" and o.code.text == "111" and m.phantoms == 0


def test_timing_is_robust_to_outliers_and_survives_a_restart(tmp_path):
    path = tmp_path / "t.json"
    t = PosTiming(path=str(path))
    for k in range(30):
        t.add(10.0 * k, 10.0 * k + 0.5, 10.0 * k + 0.5 + 1.4 + 0.01 * (k % 7))
    for k in range(2):                                   # two rescans much later
        t.add(0.0, 0.5, 4.9)
    w = t.window(0.6, 0.8)
    assert 1.3 <= w.shift_s <= 1.5 and w.close_s <= w.shift_s + 0.8 + 1e-9   # not 4.4 s
    assert t.add(0.0, 0.5, 60.0) is False and t.rejected == 1
    t.save()
    again = PosTiming(path=str(path))
    assert again.window(0.6, 0.8) == w and again.status().samples == 32


def test_unreadable_timing_state_starts_fresh(tmp_path, caplog):
    path = tmp_path / "t.json"
    path.write_text("{not json")
    t = PosTiming(path=str(path))
    assert t.status().samples == 0 and "unreadable" in caplog.text
    path.write_text(json.dumps({"v": 1, "samples": [[1.0, 0.5], ["x", 1]]}))
    assert PosTiming(path=str(path)).status().samples == 0


@pytest.mark.parametrize("delay", [0.0, 1.5])
def test_status_publishes_the_learned_delay(detector, delay):
    level = dataclasses.replace(LEVELS["easy"], name="d", pos_delay=(delay, delay))
    run = run_lane(SyntheticLaneCamera(scripted(47, ["scanned"] * 3, level), fps=15.0),
                   detector)
    st = _statuses(run)[-1]
    assert st.state == "ok" and st.timing_samples >= 1
    assert delay - 0.2 <= st.pos_delay_s <= delay + 0.8
