"""Transaction matcher and alert policy on hand-made passes (no camera)."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from storeedge.firmware.checkout.alerts import AlertPolicy, AlertPolicyParams
from storeedge.firmware.checkout.config import MatchSection
from storeedge.firmware.checkout.matcher import PosScan, TransactionMatcher
from storeedge.firmware.checkout.tracker import CodeSeen, ItemPass


def _pass(i, t0, codes=(), reads=2):
    cs = tuple(CodeSeen(f"01:{c:014d}", str(c), "EAN-13", reads) for c in codes)
    return ItemPass(i, t0 - 0.8, t0, t0 + 0.5, t0 + 0.9, cs, None, None, True)


def _scan(t, code):
    return PosScan(t, f"01:{code:014d}", str(code), f"]E0{code}")


behaviour = st.sampled_from(["ok", "missed", "switch", "nocode_ok", "nocode_missed"])


@settings(max_examples=80, deadline=None)
@given(st.lists(behaviour, min_size=1, max_size=10),
       st.lists(st.floats(0.0, 0.7), min_size=10, max_size=10),
       st.lists(st.floats(-0.3, 0.3), min_size=10, max_size=10))
def test_outcomes_survive_latency_and_scan_timing_jitter(kinds, latency, jitter):
    """Scans anywhere in the scan zone plus up to 0.7 s of POS latency (window 0.8 s)."""
    m = TransactionMatcher(MatchSection(pre_s=0.6, post_s=0.8))
    for i, k in enumerate(kinds):
        t0 = 2.0 + 3.0 * i
        m.add_pass(_pass(i, t0, () if k.startswith("nocode") else (100 + i,)))
        t_read = t0 + 0.25 + jitter[i] * 0.8
        if k in ("ok", "nocode_ok"):
            m.add_scan(_scan(t_read + latency[i], 100 + i))
        elif k == "switch":
            m.add_scan(_scan(t_read + latency[i], 900 + i))
    outcomes, notes = m.tick(2.0 + 3.0 * len(kinds) + 10.0)
    got = sorted((o.item_pass.id, o.kind) for o in outcomes)
    want = [(i, {"ok": "ok", "nocode_ok": "ok", "switch": "switch"}.get(k, "missed"))
            for i, k in enumerate(kinds)]
    assert got == want and notes == []


def test_slots_wait_for_their_window():
    from storeedge.firmware.checkout.timing import PosTiming, TimingParams

    m = TransactionMatcher(MatchSection(post_s=0.8),                 # the configured window
                           timing=PosTiming(TimingParams(cold_post_s=0.0)))
    m.add_pass(_pass(1, 10.0, (5,)))
    assert m.tick(11.0) == ([], [])                 # window closes at 10.5 + 0.8
    m.add_scan(_scan(11.1, 5))
    outcomes, _ = m.tick(11.31)
    assert [o.kind for o in outcomes] == ["ok"]


def test_scan_in_blind_interval_is_not_reported():
    windows = MatchSection()
    windows.scan_grace_s = 1.0           # not a setting: a class constant (4 s)
    m = TransactionMatcher(windows)
    m.add_blind(5.0, 9.0)
    m.add_scan(_scan(7.0, 3))
    m.add_scan(_scan(20.0, 4))
    _, notes = m.tick(30.0)
    assert [n.scan.code for n in notes] == ["4"]


def test_policy_nudges_then_escalates_and_switch_escalates():
    pol = AlertPolicy(AlertPolicyParams(escalate_after=3, switch_escalates=True))
    m = TransactionMatcher()
    for i in range(3):
        m.add_pass(_pass(i, 2.0 + 3 * i, (50 + i,)))
    m.add_scan(_scan(5.5, 999))                     # pass 1: ticket switch
    outcomes, _ = m.tick(100.0)
    levels = [pol.decide(o).level for o in sorted(outcomes, key=lambda o: o.item_pass.id)]
    assert levels == ["nudge", "escalate", "escalate"]
    pol.new_transaction()
    assert pol.incidents == 0


def test_the_match_section_is_the_matchers_parameter_object():
    """``checkout.match`` is what the matcher reads; ``scan_grace_s`` stays out of the config
    (a constant, refused as a key) and defaults to 4 s."""
    import pytest

    from storeedge.config import ConfigError, config_from_dict
    from storeedge.firmware.checkout.config import CheckoutSection
    c = config_from_dict({"match": {"pre_s": 0.3, "min_reads": 3}}, CheckoutSection)
    m = TransactionMatcher(c.match)
    assert m.windows is c.match and m.windows.scan_grace_s == 4.0
    m.add_pass(_pass(1, 1.0, codes=[7], reads=2))            # 2 reads < min_reads 3: weak
    assert [s.code for s in m.slots] == [None]
    with pytest.raises(ConfigError, match="scan_grace_s"):
        config_from_dict({"match": {"scan_grace_s": 1.0}}, CheckoutSection)
