"""Strict config loading: unknown keys, types, ranges, lines, atomic writes."""
from __future__ import annotations

import subprocess
import sys

import pytest

from storeedge.config import (ConfigError, config_from_yaml, config_to_dict,
                                              describe, load_config, secret_keys,
                                              write_config_atomic)
from storeedge.settings import DeviceConfig
from storeedge.firmware.gateway.config import GatewayConfig

GOOD = """\
device:
  id: fz-1
  kind: freezer
  store: s0042
link:
  url: mqtts://10.0.0.2:8883
  keepalive_s: 20
  tls_dir: /data/identity
outbox:
  path: /data/outbox.db
"""


def test_good_config_and_defaults():
    cfg = config_from_yaml(GOOD, DeviceConfig)
    assert cfg.device.id == "fz-1" and cfg.link.keepalive_s == 20
    assert cfg.link.backoff_max_s == 30.0 and cfg.outbox.max_bytes == 64 * 2**20
    insecure = "security:\n  insecure: true\n"
    assert config_from_yaml(insecure, DeviceConfig) == DeviceConfig(
        security=config_from_yaml(insecure, DeviceConfig).security)
    with pytest.raises(ConfigError, match="plain MQTT"):       # secure by default
        config_from_yaml("", DeviceConfig)


@pytest.mark.parametrize("text, key, line, words", [
    (GOOD + "  colour: blue\n", "outbox.colour", 11, "unknown key"),
    (GOOD.replace("keepalive_s: 20", "keepalive_s: 2"), "link.keepalive_s", 7,
     "below the minimum 5 s"),
    (GOOD.replace("keepalive_s: 20", "keepalive_s: fast"), "link.keepalive_s", 7,
     "must be an integer"),
    (GOOD.replace("kind: freezer", "kind: toaster"), "device.kind", 3, "not one of"),
    (GOOD.replace("id: fz-1", "id: 'Bad Id'"), "device.id", 2, "does not match"),
    (GOOD.replace("url: mqtts://10.0.0.2:8883", "url: http://x"), "link.url", 6,
     "does not match"),
    (GOOD + "log: [1, 2]\n", "log", 11, "must be a mapping"),
    (GOOD + "link:\n  keepalive_s: 9\n", "link", 11, "given twice"),
    (GOOD.replace("mqtts://10.0.0.2:8883", "mqtt://10.0.0.2:1883"), "link.url", 6,
     "plain MQTT"),
])
def test_errors_name_key_line_and_reason(text, key, line, words):
    with pytest.raises(ConfigError) as info:
        config_from_yaml(text, DeviceConfig)
    err = info.value
    assert (err.key, err.line) == (key, line)
    assert words in err.reason
    assert f"{key} (line {line})" in str(err)


def test_cross_field_check_names_the_key():
    text = GOOD.replace("keepalive_s: 20", "backoff_min_s: 10\n  backoff_max_s: 5")
    with pytest.raises(ConfigError) as info:
        config_from_yaml(text, DeviceConfig)
    assert info.value.key == "link.backoff_max_s" and info.value.line == 8


def test_yaml_syntax_error_has_a_line():
    with pytest.raises(ConfigError) as info:
        config_from_yaml("device:\n  id: [unclosed\n", DeviceConfig)
    assert info.value.line is not None and "YAML" in info.value.reason


def test_describe_lists_units_ranges_and_secrets():
    infos = {i.key: i for i in describe(DeviceConfig)}
    assert infos["link.keepalive_s"].unit == "s"
    assert (infos["link.keepalive_s"].min, infos["link.keepalive_s"].max) == (5, 600)
    assert "link.password" in secret_keys(DeviceConfig)
    assert all(i.doc for i in infos.values()), "every setting is documented"


def test_atomic_write_round_trip(tmp_path):
    cfg = config_from_yaml(GOOD, DeviceConfig)
    path = tmp_path / "dev.yaml"
    write_config_atomic(path, config_to_dict(cfg))
    assert load_config(path, DeviceConfig) == cfg
    assert [p.name for p in tmp_path.iterdir()] == ["dev.yaml"], "no temp file left behind"


def test_validate_config_cli(tmp_path):
    good = tmp_path / "gw.yaml"
    good.write_text("relay:\n  db_path: /tmp/gw.db\nsecurity:\n  insecure: true\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("relay:\n  quantum: 0\n")
    run = lambda p: subprocess.run([sys.executable, "-m", "storeedge", "gateway", "--config",  # noqa: E731
                                    str(p), "--validate-config"], capture_output=True, text=True,
                                   timeout=60)
    ok, ko = run(good), run(bad)
    assert ok.returncode == 0 and ok.stdout.startswith("OK")
    assert ko.returncode == 1 and "relay.quantum (line 2)" in ko.stderr
    assert load_config(good, GatewayConfig).relay.db_path == "/tmp/gw.db"
