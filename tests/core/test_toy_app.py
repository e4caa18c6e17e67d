"""Adding a device kind: one new folder and one registration line, and every part of storeedge
that lists apps picks it up (CLI, event registry, console, demo, PKI/ACL kinds, config
reference, image generator).

The toy app (an electronic shelf-label bridge) is a package written into ``tmp_path`` and
registered the way an app from another distribution is: one line under ``[storeedge.apps]`` in
its ``entry_points.txt``.  Nothing in storeedge's own tree is edited.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from storeedge import apps

IMAGES = Path(__file__).resolve().parents[2] / "images"

SPEC = '''
from storeedge.apps import AppSpec

SPEC = AppSpec(
    kind="shelf_label", package=__package__, title="Shelf-label bridge",
    summary="electronic shelf-label bridge",
    config=".config:ShelfConfig", build=".app:build", hardware_section="shelf",
)
'''
CONFIG = '''
from storeedge.config import section, setting
from storeedge.settings import DeviceConfig


@section
class ShelfSection:
    """The radio that talks to the labels."""

    channel: int = setting(11, doc="radio channel", min=11, max=26)


@section
class ShelfConfig(DeviceConfig):
    """A shelf-label bridge."""

    shelf: ShelfSection = setting(ShelfSection, doc="the label radio")
'''
EVENTS = '''
from dataclasses import dataclass

from storeedge.events import Prio, event_type


@event_type("shelf_label.price_shown", prio=Prio.OPERATIONAL)
@dataclass
class PriceShown:
    """A label now shows a new price."""

    label: str
    cents: int
'''
APP = '''
from toyshelf.events import PriceShown


class ShelfBridge:
    """Shows one price, then heartbeats until stopped."""

    def __init__(self, cfg, sink, clock):
        self.cfg, self.sink, self.clock = cfg, sink, clock

    def serve_config(self, config_path, restart):
        return None

    def run(self, stop):
        self.sink.emit(PriceShown(label=f"ch{self.cfg.shelf.channel}", cents=199))
        while not stop.wait(0.05):
            self.sink.heartbeat()


def build(cfg, sink, clock):
    return ShelfBridge(cfg, sink, clock)
'''
MAIN = '''
from storeedge import apps
from storeedge.firmware.common.runner import run_app


def main(argv):
    return run_app(apps.app("shelf_label"), argv)
'''
DEMO = '''
class ToyDevice:
    name = "shelf-1"


def demo_devices(ctx):
    return [ToyDevice()]
'''


@pytest.fixture
def toy_app(tmp_path, monkeypatch):
    """The toy package and its one registration line, on sys.path for this test only."""
    pkg = tmp_path / "toyshelf"
    pkg.mkdir()
    for name, text in {"__init__": "", "spec": SPEC, "config": CONFIG, "events": EVENTS,
                       "main": MAIN, "app": APP, "demo": DEMO}.items():
        (pkg / f"{name}.py").write_text(textwrap.dedent(text))
    dist = tmp_path / "toyshelf-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyshelf\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[storeedge.apps]\nshelf_label = toyshelf.spec\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    apps.refresh()
    yield tmp_path
    apps.refresh()


def _config(tmp_path, channel=15):
    doc = {"device": {"id": "shelf-1", "kind": "shelf_label", "store": "s0042"},
           "link": {"url": "mqtt://127.0.0.1:1883"}, "security": {"insecure": True},
           "outbox": {"path": str(tmp_path / "outbox.db")}, "shelf": {"channel": channel}}
    path = tmp_path / "shelf.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_registry_lists_the_toy_after_the_builtin_apps(toy_app):
    assert apps.device_kinds() == ("checkout", "dock_door", "freezer", "gateway", "shelf_label")
    assert "shelf_label" in apps.in_store_kinds()


def test_cli_lists_and_runs_the_toy(toy_app, capsys):
    from storeedge import cli
    assert cli.main(["--help"]) == 0
    assert "shelf_label   electronic shelf-label bridge" in capsys.readouterr().out
    good = _config(toy_app)
    assert cli.main(["shelf_label", "--config", str(good), "--validate-config"]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    bad = _config(toy_app, channel=40)                  # the toy's own section is validated
    assert cli.main(["shelf_label", "--config", str(bad), "--validate-config"]) == 1
    assert "shelf.channel" in capsys.readouterr().err


def test_the_runner_builds_and_runs_the_toy(toy_app):
    import threading

    from storeedge.config import load_config
    from storeedge.drivers.clock import SimulatedClock
    from helpers.sinks import RecordingSink
    spec = apps.app("shelf_label")
    cfg = load_config(str(_config(toy_app, channel=12)), spec.config_class())
    sink = RecordingSink()
    app = spec.build_function()(cfg, sink, SimulatedClock())
    stop = threading.Event()
    thread = threading.Thread(target=app.run, args=(stop,))
    thread.start()
    for _ in range(1000):                    # at most ~10 s
        if sink.heartbeats:
            break
        stop.wait(0.01)
    stop.set()
    thread.join(5)
    assert sink.heartbeats and not thread.is_alive()
    assert [(b.label, b.cents) for b in sink.bodies] == [("ch12", 199)]


def test_event_registry_and_schemas_include_the_toy(toy_app):
    from storeedge.events import all_schemas, load_all_event_types
    assert "shelf_label.price_shown" in load_all_event_types()
    assert "shelf_label.price_shown" in json.dumps(all_schemas())


def test_console_uses_the_toy_config_class(toy_app):
    from storeedge.firmware.console.adapters import config_class_for
    assert config_class_for("shelf_label").__name__ == "ShelfConfig"


def test_demo_adds_the_toy_devices(toy_app, tmp_path):
    from storeedge.firmware.demo import DemoContext, _load_app_devices
    ctx = DemoContext(broker_url="mqtt://127.0.0.1:1", store="s0042", workdir=str(tmp_path))
    names = [getattr(d, "name", None) for d in _load_app_devices(ctx)]
    assert "shelf-1" in names


def test_pki_broker_acl_and_config_reference_know_the_toy(toy_app, tmp_path):
    from storeedge.brokerconf import acl_text
    from storeedge.docgen import generate
    from storeedge.pki import StorePKI
    pki = StorePKI.init(tmp_path / "pki", "s0042")
    pki.enrol("shelf-1", "shelf_label")
    acl, _topics = acl_text(pki, "in_store")
    assert "user shelf-1" in acl and "se/v1/s0042/shelf_label/shelf-1/" in acl
    assert "## Shelf-label bridge" in generate()


def test_unknown_kind_is_refused_with_the_known_ones(toy_app, capsys):
    from storeedge import cli
    assert cli.main(["shelf_lable"]) == 2
    assert "unknown app 'shelf_lable'" in capsys.readouterr().err
    with pytest.raises(apps.AppSpecError, match="known: checkout, dock_door"):
        apps.app("shelf_lable")


def test_image_generator_builds_an_image_kind_for_the_toy(toy_app, tmp_path, monkeypatch):
    """An image kind naming the toy app: its device kind, unit and default config come from
    the toy's spec; a kind naming no registered app is refused with the known ones."""
    spec = importlib.util.spec_from_file_location("toy_imagegen", IMAGES / "imagegen.py")
    gen = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "toy_imagegen", gen)      # dataclasses look it up
    spec.loader.exec_module(gen)
    kinds = tmp_path / "kinds"
    kinds.mkdir()
    (kinds / "shelf.yaml").write_text("kind: shelf\napp: shelf_label\n"
                                      "layers: [base, storeedge-app]\n")
    image = gen.render("shelf", tmp_path / "gen", kinds_dir=kinds)
    assert (image.device_kind, image.unit) == ("shelf_label", "storeedge@shelf_label.service")
    defaults = yaml.safe_load((tmp_path / "gen" / "rootfs/usr/share/storeedge/defaults/"
                               "shelf_label.yaml").read_text())
    assert defaults["device"]["kind"] == "shelf_label"
    (kinds / "typo.yaml").write_text("kind: typo\napp: shelf_lable\nlayers: [base]\n")
    with pytest.raises(gen.DefinitionError, match="known: checkout, dock_door"):
        gen.load_kind("typo", kinds)
