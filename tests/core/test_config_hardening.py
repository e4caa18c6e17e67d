"""Config attacks of issue 13: YAML alias bombs and recursive aliases, anchors, non-finite
numbers (files and the console's ``set``), deep nesting; secrets in a 0600 file."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from storeedge.config import config_from_yaml, load_config, yaml_value
from storeedge.exc import ConfigError
from storeedge.settings import DeviceConfig
from storeedge.firmware.dock_door.config import DoorConfig

BOMB_ROWS = "abcdefghijklmnopqrstuvwxyz"
DOOR_DEV = {"id": "door-1", "kind": "dock_door"}
PLAIN = {"insecure": True}          # these configs use a plain test link on purpose
PLAIN_YAML = "security:\n  insecure: true\n"


def alias_bomb(levels: int = 9) -> str:
    """The billion-laughs document: each row is 9 aliases of the one before (9**levels)."""
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = BOMB_ROWS[i - 1], BOMB_ROWS[i]
        rows.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(rows) + "\n"


def refusal(text: str, cls=DeviceConfig) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_yaml(text, cls)
    return info.value


def test_an_alias_bomb_is_refused_not_expanded(tmp_path):
    text = alias_bomb(10)
    assert 400 <= len(text.encode()) <= 460                 # the 430-byte bomb
    err = refusal(text)
    assert err.key == "a" and err.line == 1 and "anchor &a" in err.reason
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    done = subprocess.run([sys.executable, "-m", "storeedge", "gateway", "--config", str(path),
                           "--validate-config"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "bomb.yaml: a (line 1): YAML anchor &a" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_recursive_alias_is_a_clear_error():
    err = refusal("device: &d\n  id: dev-1\n  kind: *d\n")
    assert err.key == "device" and err.line == 1
    err = refusal("device:\n  id: dev-1\n  kind: *nowhere\n")
    assert err.key == "device.kind" and err.line == 3 and "alias *nowhere" in err.reason
    err = refusal("log:\n  level: &lv info\n")
    assert err.key == "log.level" and err.line == 2


def test_deep_nesting_is_refused():
    err = refusal("device: " + "[" * 500 + "]" * 500 + "\n")
    assert "nested deeper" in err.reason and err.line == 1


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.Inf", "+.inf"])
def test_non_finite_numbers_are_refused_with_key_and_line(value):
    err = refusal(f"device:\n  id: door-1\n  kind: dock_door\ndoor:\n  skew_s: {value}\n",
                  DoorConfig)
    assert (err.key, err.line) == ("door.skew_s", 5) and "not a finite number" in err.reason


def test_console_set_refuses_nan_the_same_way(tmp_path):
    from storeedge.firmware.console.exc import ConfigValueError
    from storeedge.firmware.console.schema import Schema

    schema = Schema(DoorConfig)
    info = schema.resolve("door.skew_s")
    for text in ("nan", "NaN", "inf", "-inf", ".nan", "-.inf"):
        with pytest.raises(ConfigValueError, match="door.skew_s: .*not a finite number"):
            value = schema.parse_value(info, text)            # what `set door.skew_s X` does
            schema.validate({"device": DOOR_DEV, "security": PLAIN, "door": {"skew_s": value}},
                            "door.skew_s")
    ok = schema.validate({"device": DOOR_DEV, "security": PLAIN,
                          "door": {"skew_s": schema.parse_value(info, "30")}})
    assert ok.door.skew_s == 30
    with pytest.raises(ConfigError, match="alias"):
        yaml_value("[*a]")


# ----------------------------------------------------------------------------- secrets


def _write(path, text: str, mode: int = 0o644):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_secrets_come_from_a_private_sidecar_file(tmp_path):
    cfg = _write(tmp_path / "dev.yaml", "device:\n  id: dev-1\nlink:\n  username: dev-1\n"
                 + PLAIN_YAML)
    _write(tmp_path / "dev.secrets.yaml", "link:\n  password: s3cret\n", 0o600)
    loaded = load_config(cfg, DeviceConfig)
    assert loaded.link.password == "s3cret" and loaded.link.username == "dev-1"


def test_secrets_file_key_and_refusals(tmp_path):
    cfg = _write(tmp_path / "dev.yaml", "secrets_file: private/keys.yaml\ndevice:\n  id: dev-1\n"
                 + PLAIN_YAML)
    (tmp_path / "private").mkdir()
    secrets = _write(tmp_path / "private" / "keys.yaml", "link:\n  password: pw\n", 0o600)
    assert load_config(cfg, DeviceConfig).link.password == "pw"
    os.chmod(secrets, 0o640)
    with pytest.raises(ConfigError, match="readable by group/others.*chmod 600"):
        load_config(cfg, DeviceConfig)
    _write(secrets, "device:\n  id: evil\n", 0o600)          # not a secret setting
    with pytest.raises(ConfigError) as info:
        load_config(cfg, DeviceConfig)
    assert info.value.key == "device.id" and info.value.line == 2
    assert "not a secret setting" in str(info.value) and "keys.yaml" in str(info.value)
    _write(secrets, "link:\n  password: &p pw\n", 0o600)     # same strictness
    with pytest.raises(ConfigError, match="anchor"):
        load_config(cfg, DeviceConfig)
    _write(cfg, "secrets_file: private/keys.yaml\nlink:\n  password: inline\n" + PLAIN_YAML)
    _write(secrets, "link:\n  password: pw\n", 0o600)
    with pytest.raises(ConfigError, match="given both"):
        load_config(cfg, DeviceConfig)
    _write(cfg, "secrets_file: private/missing.yaml\n" + PLAIN_YAML)
    with pytest.raises(ConfigError, match="cannot read secrets file"):
        load_config(cfg, DeviceConfig)
