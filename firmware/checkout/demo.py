"""``storeedge demo``: one checkout lane on the synthetic camera with a scripted basket that
includes a skipped item, a ticket switch and produce keyed by PLU; scans come through a
pyserial ``loop://`` port as from a scanner tap; events go through the real device service."""
from __future__ import annotations

from storeedge.drivers.camera.lane import scripted
from storeedge.drivers.camera.synthetic import SyntheticLaneCamera

BASKET = ["scanned", "produce", "skipped", "scanned", "ticket_switch", "scanned"]


class CheckoutDemoDevice:
    """A demo lane: ``start()``, ``stop()``, ``summary()``."""

    def __init__(self, ctx, dev_id: str = "lane-1", seed: int = 7):
        from storeedge.firmware.checkout.config import CheckoutConfig, CheckoutSection
        from storeedge.config import config_from_dict, config_to_dict

        base = config_to_dict(ctx.device_config("checkout", dev_id))
        base["checkout"] = config_to_dict(CheckoutSection())
        base["checkout"]["camera"].update(type="synthetic", seed=seed, fps=15.0)
        base["checkout"]["pos"]["type"] = "synthetic"
        self.cfg = config_from_dict(base, CheckoutConfig)
        self.ctx, self.name, self.seed = ctx, dev_id, seed
        self.runner = None
        self.app = None

    def start(self) -> None:
        from storeedge import apps
        from storeedge.firmware.common.runner import AppRunner

        clock = self.ctx.clock
        cam = SyntheticLaneCamera(scripted(self.seed, BASKET), fps=15.0, realtime=True,
                                  clock=clock, t0=clock.monotonic())
        self.runner = AppRunner(apps.app("checkout"), self.cfg, clock, parts={"camera": cam})
        self.app = self.runner.build()
        self.runner.start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()

    def summary(self) -> dict:
        if self.app is None:
            return {"started": False}
        st = self.app.lane.stats
        return {"passes": st.passes, "scans": st.scans,
                "nudges": sum(a.level == "nudge" for a in st.alerts),
                "escalations": sum(a.level == "escalate" for a in st.alerts),
                "frames_dropped": self.app.queue.dropped,
                "expected_alerts": sum(t.expect != "none" for t in self.app.camera.script.truth)}


def demo_devices(ctx) -> list:
    """The checkout lane of the demo."""
    return [CheckoutDemoDevice(ctx)]
