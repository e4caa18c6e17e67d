"""One exception root: every package's exc.py derives from storeedge.exc.StoreedgeError, every
concrete class also inherits a matching built-in, and exit codes come from the class."""
from __future__ import annotations

import importlib
import inspect

import pytest

from storeedge import exc as core
from storeedge.exc import StoreedgeError, exit_code_of

PACKAGE_EXC = [
    "storeedge.drivers.exc", "storeedge.drivers.camera.exc", "storeedge.drivers.onewire.exc",
    "storeedge.drivers.pos.exc", "storeedge.firmware.checkout.exc",
    "storeedge.firmware.console.exc", "storeedge.firmware.dock_door.exc",
    "storeedge.firmware.freezer.exc", "storeedge.firmware.gateway.exc",
    "storeedge.native.exc", "storeedge.server.exc", "storeedge.server.web.exc",
]
SYSEXITS = {1, core.EX_DATAERR, core.EX_UNAVAILABLE, core.EX_SOFTWARE, core.EX_IOERR,
            core.EX_NOPERM, core.EX_CONFIG}


def _classes(module_name: str) -> list[type]:
    module = importlib.import_module(module_name)
    return [c for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, BaseException) and c.__module__ == module_name]


def _builtin_bases(cls: type) -> list[type]:
    return [b for b in cls.__mro__ if b.__module__ == "builtins"
            and b not in (Exception, BaseException, object)]


@pytest.mark.parametrize("module_name", PACKAGE_EXC)
def test_every_class_derives_from_the_one_root(module_name):
    classes = _classes(module_name)
    assert classes, f"{module_name} declares no exception"
    for cls in classes:
        assert issubclass(cls, StoreedgeError), f"{cls.__qualname__} is not a StoreedgeError"
        assert cls.exit_code in SYSEXITS, f"{cls.__qualname__}.exit_code = {cls.exit_code}"


@pytest.mark.parametrize("module_name", PACKAGE_EXC)
def test_concrete_classes_also_inherit_a_builtin(module_name):
    classes = _classes(module_name)
    bases = {b for cls in classes for b in cls.__bases__}
    for cls in classes:
        if cls in bases and not _builtin_bases(cls):
            continue                 # a package root: a catch-all, never raised itself
        assert _builtin_bases(cls), f"{cls.__qualname__} inherits no built-in exception"


def test_exit_code_comes_from_the_class():
    from storeedge.firmware.dock_door.exc import StateStoreError
    from storeedge.exc import KeyFileError
    from storeedge.server.exc import StoreDatabaseError

    assert exit_code_of(KeyFileError("bad key")) == core.EX_CONFIG
    assert exit_code_of(StateStoreError("disk")) == core.EX_IOERR
    assert exit_code_of(StoreDatabaseError("down")) == core.EX_UNAVAILABLE
    assert exit_code_of(RuntimeError("a bug")) == core.EX_SOFTWARE


def test_a_real_failure_carries_its_exit_code(tmp_path):
    from storeedge.server.db import open_store_db
    from storeedge.server.exc import StoreDatabaseError

    with pytest.raises(StoreDatabaseError) as info:
        open_store_db(str(tmp_path / "no" / "such" / "dir" / "store.db"))
    assert isinstance(info.value, StoreedgeError)
    assert exit_code_of(info.value) == core.EX_UNAVAILABLE


def test_app_exit_is_in_the_core_exc_module_and_carries_its_exit_code(tmp_path, capsys):
    """``load_app_config`` ends a command with AppExit: 0 after a good --validate-config, 1
    after a bad config (the status kept from before the runner), read by exit_code_of."""
    from storeedge import cmdline as common_app
    from storeedge.settings import DeviceConfig
    assert common_app.AppExit is core.AppExit and issubclass(core.AppExit, StoreedgeError)
    good = tmp_path / "good.yaml"
    good.write_text("device: {id: d-1, kind: freezer, store: s1}\nsecurity: {insecure: true}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("device: {id: d-1, kind: freezer, store: s1, colour: red}\n")
    parser = common_app.app_parser("freezer", "t")
    ends = []
    for path in (good, bad):
        with pytest.raises(core.AppExit) as info:
            common_app.load_app_config(parser.parse_args(["--config", str(path),
                                                          "--validate-config"]), DeviceConfig)
        ends.append(exit_code_of(info.value))
    assert ends == [0, 1]
    out, err = capsys.readouterr()
    assert f"OK: {good}" in out and "colour" in err
