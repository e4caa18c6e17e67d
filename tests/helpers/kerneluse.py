"""Pytest plugin: run the pure pass (``STOREEDGE_PURE=1``) only on tests that reach a kernel.

``STOREEDGE_PURE=1`` changes which code runs only inside the native kernel backends
(``storeedge.native._<k>_cy`` -> ``_<k>_py``) and at the other switches listed in
:data:`SWITCHES`.  A test that never touches a backend runs the same code in both passes, so
the pure pass can leave it out.  Which tests touch one is *recorded*, not guessed:

* native pass, ``--kernel-use-record=FILE``: every backend module is wrapped in a proxy
  (``helpers/kernel_site/sitecustomize.py``) that reports each use to the context running at
  that moment -- the collection of a directory/module (conftest and module imports), a fixture's
  set-up, or a test's set-up/call/teardown; a thread's uses also count for the contexts that
  started it.  Every child process gets a trace file and this ``sitecustomize`` on its
  ``PYTHONPATH``; its kernel uses (and its grandchildren's) count for the contexts that started
  it.  FILE lists the tests that *passed* and are clean, in modules with no kernel user.
* pure pass, ``--kernel-use-select=FILE``: deselects exactly those clean tests and prints how
  many and why.

Fail-safe: a test is deselected only if FILE names it clean.  Kept are: a test that touched a
kernel (itself, any fixture of that name, its module's or directory's collection), that
started a Python child whose trace is missing (``-I``/``-E``, scrubbed environment), that did
not pass in the native pass (failed, skipped, not run), that is new since the record, or
whose module mentions ``STOREEDGE_PURE``.  Nothing is deselected when the record is missing,
incomplete, from another source tree, or when a module outside :data:`SWITCHES` reads
``STOREEDGE_PURE``.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.kernel_site import sitecustomize as trace

REPO = Path(__file__).resolve().parents[2]
SITE_DIR = Path(trace.__file__).parent
SOURCE_DIRS = ("storeedge", "firmware", "server", "drivers", "native", "tests")
SWITCH_RE = re.compile(r"STOREEDGE_PURE|pure_forced|PURE_ENV")
BACKEND_SWITCH = "native/_backend.py"
# Other modules that read STOREEDGE_PURE, each with the test that runs both of its paths in one
# process (so the test runs them in the native pass already): module -> that test.
SWITCHES = {
    "storeedge/events.py":
        "tests/core/test_ingest.py::test_compiled_and_pure_envelope_decoding_agree",
}
PYTHON_ARG_RE = re.compile(r"(?:^|[/\s])(?:python[0-9.]*|storeedge)(?:\s|$)")
FORMAT = 1
NOT_PASSED = "did not pass in the native pass"
PASSED = {"setup:passed", "call:passed", "teardown:passed"}     # a test's reports, all passed


def pytest_addoption(parser) -> None:
    group = parser.getgroup("kernel-use", "pure pass: only tests that reach a native kernel")
    group.addoption("--kernel-use-record", metavar="FILE", default=None,
                    help="native pass: record which tests never reach a kernel backend")
    group.addoption("--kernel-use-select", metavar="FILE", default=None,
                    help="pure pass (STOREEDGE_PURE=1): deselect the tests FILE records clean")


def pytest_configure(config) -> None:
    record, select = (config.getoption("--kernel-use-record"),
                      config.getoption("--kernel-use-select"))
    if record and select:
        raise pytest.UsageError("--kernel-use-record and --kernel-use-select exclude each other")
    if record:
        config.pluginmanager.register(Recorder(Path(record)), "kernel-use-recorder")
    if select:
        config.pluginmanager.register(Selector(Path(select)), "kernel-use-selector")


def source_hashes() -> dict[str, str]:
    """SHA-256 of every source file (``.py``, ``.pyx``, root ``conftest.py``,
    ``pyproject.toml``): the tree a record belongs to."""
    paths = [p for top in SOURCE_DIRS for p in (REPO / top).rglob("*")
             if p.suffix in (".py", ".pyx") and "__pycache__" not in p.parts and p.is_file()]
    paths += [p for p in (REPO / "conftest.py", REPO / "pyproject.toml") if p.exists()]
    return {p.relative_to(REPO).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(paths)}


def _is_test_module(rel: str) -> bool:
    return rel.startswith("tests/") and Path(rel).name.startswith("test_")


def _reads_switch(path: Path) -> bool:
    """True when the module's code (not its docstrings or comments) names STOREEDGE_PURE,
    pure_forced or PURE_ENV."""
    tree = ast.parse(path.read_text(errors="replace"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value == "STOREEDGE_PURE":
            return True
        name = getattr(node, "id", None) or getattr(node, "attr", None) or getattr(
            node, "name", None)
        if name in ("pure_forced", "PURE_ENV"):
            return True
    return False


def unknown_switches() -> list[str]:
    """Modules (not test modules) that read STOREEDGE_PURE other than the backend switch and
    :data:`SWITCHES`: their pure path is not traced, so nothing may be deselected."""
    out = []
    for top in SOURCE_DIRS:
        for p in sorted((REPO / top).rglob("*.py")):
            rel = p.relative_to(REPO).as_posix()
            if _is_test_module(rel) or rel in SWITCHES or rel == BACKEND_SWITCH:
                continue                     # test modules that read it are kept whole
            if p.parent != SITE_DIR and p != Path(__file__).resolve() and _reads_switch(p):
                out.append(rel)
    return out


def _python_like(args, executable) -> bool:
    words = [str(a) for a in (list(args) + [executable or ""])]
    return any(PYTHON_ARG_RE.search(w) for w in words) or sys.executable in words


@functools.lru_cache(maxsize=None)
def _mentions_switch(path: str) -> bool:
    """A test module that mentions STOREEDGE_PURE anywhere (even a docstring) is kept."""
    return bool(SWITCH_RE.search(Path(path).read_text(errors="replace")))


def _trace_may_be_off(args) -> bool:
    """True when a child might skip ``sitecustomize`` or lose our environment (-I/-E/-S, or
    a wrapper that resets the environment)."""
    words = [str(a) for a in args]
    return any(re.fullmatch(r"-[A-Za-z]*[IES][A-Za-z]*", w) for w in words) or any(
        os.path.basename(w) in ("env", "sudo", "su", "runuser", "setpriv") for w in words)


@dataclass
class Child:
    """A child process started while recording: its trace file and what started it."""

    log: Path
    contexts: tuple[str, ...]
    python: bool
    trace_may_be_off: bool
    popen: subprocess.Popen

    def killed_in_start_up(self) -> bool:
        """No trace although nothing turned tracing off, and a signal ended it: it was killed
        before ``site`` ran, so it ran none of our code (a SIGKILL cycle's early kill)."""
        code = self.popen.poll()
        return not self.trace_may_be_off and code is not None and code < 0


class Recorder:
    """Native pass: which contexts touch a kernel backend; writes the clean tests."""

    def __init__(self, path: Path):
        self.path = path
        self.stack: list[str] = []
        self.hits: dict[str, set[str]] = {}
        self.children: list[Child] = []
        self.outcomes: dict[str, set[str]] = {}
        self.items: list = []
        self.early = trace.loaded_backends()
        self.import_time: set[str] = set()
        self.trace_dir = Path(tempfile.mkdtemp(prefix="kernel-trace-"))
        self.finder = trace.install(self.hit)
        self._orig_exec = subprocess.Popen._execute_child
        subprocess.Popen._execute_child = self._wrap_exec(self._orig_exec)
        self._orig_start = threading.Thread.start
        threading.Thread.start = self._wrap_thread_start(self._orig_start)

    def hit(self, name: str, attr: str) -> None:
        if attr not in ("BACKEND", "<load>"):
            where = trace.importing_file()      # a result cached at import time in a library?
            if where and not re.search(r"/tests/(.*/)?(test_[^/]*|conftest)\.py$", where):
                self.import_time.add(f"{name}.{attr} in {where}")
        for ctx in self.contexts():
            self.hits.setdefault(ctx, set()).add(name)

    def contexts(self) -> tuple[str, ...]:
        """What runs now: the test/fixture/collection stack, plus, in a thread, what ran when
        the thread was started (a fixture's worker thread counts for that fixture)."""
        started = getattr(threading.current_thread(), "_kt_contexts", ())
        return tuple(dict.fromkeys([*self.stack, *started])) or ("<global>",)

    def _wrap_thread_start(self, orig):
        rec = self

        def start(thread):
            thread._kt_contexts = rec.contexts()
            return orig(thread)
        return start

    def _wrap_exec(self, orig):
        rec = self

        def _execute_child(popen, args, executable, preexec_fn, close_fds, pass_fds, cwd,
                           env, *rest):
            env = dict(os.environ if env is None else env)
            log = rec.trace_dir / f"{len(rec.children)}.log"
            env[trace.TRACE_ENV] = str(log)
            env["PYTHONPATH"] = os.pathsep.join(
                [str(SITE_DIR)] + [p for p in [env.get("PYTHONPATH", "")] if p])
            rec.children.append(Child(log, rec.contexts(), _python_like(args, executable),
                                      _trace_may_be_off(args), popen))
            return orig(popen, args, executable, preexec_fn, close_fds, pass_fds, cwd, env,
                        *rest)
        return _execute_child

    def _within(self, ctx: str):
        self.stack.append(ctx)
        try:
            return (yield)
        finally:
            self.stack.pop()

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        return (yield from self._within(f"collect:{collector.nodeid}"))

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        return (yield from self._within(f"fixture:{fixturedef.argname}"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        return (yield from self._within(f"test:{item.nodeid}"))

    def pytest_collection_finish(self, session) -> None:
        self.items = list(session.items)

    def pytest_runtest_logreport(self, report) -> None:
        self.outcomes.setdefault(report.nodeid, set()).add(f"{report.when}:{report.outcome}")

    def _child_contexts(self) -> dict[str, str]:
        """Contexts whose child processes used a kernel, or whose Python child left no trace."""
        tainted: dict[str, str] = {}
        for child in self.children:
            text = child.log.read_text() if child.log.exists() else ""
            if "\nkernel " in "\n" + text:
                why = "child process used a kernel"
            elif child.python and "start " not in text and not child.killed_in_start_up():
                why = "Python child process left no trace (unknown)"
            else:
                continue
            for ctx in child.contexts:
                tainted.setdefault(ctx, why)
        return tainted

    def _reason(self, item, tainted: dict[str, str]) -> str | None:
        """Why ``item`` must stay in the pure pass, or None when it is clean."""
        if self.outcomes.get(item.nodeid, set()) != PASSED:
            return NOT_PASSED
        if _mentions_switch(str(item.path)):
            return "its module reads STOREEDGE_PURE"
        ctxs = ([f"test:{item.nodeid}"] + [f"fixture:{f}" for f in item.fixturenames]
                + [f"collect:{n.nodeid}" for n in item.listchain()])
        for ctx in ctxs:
            if ctx in self.hits:
                return f"{ctx} used {', '.join(sorted(self.hits[ctx]))}"
            if ctx in tainted:
                return f"{ctx}: {tainted[ctx]}"
        return None

    def pytest_sessionfinish(self, session) -> None:
        subprocess.Popen._execute_child = self._orig_exec
        threading.Thread.start = self._orig_start
        tainted = self._child_contexts()
        problems = [f"kernel backends imported before recording: {b}" for b in self.early]
        if self.import_time:
            problems.append(f"kernel called while importing a module: {sorted(self.import_time)}")
        if "<global>" in self.hits or "<global>" in tainted:
            problems.append("a kernel was used outside any test, fixture or collection")
        for module, test in SWITCHES.items():
            if self.outcomes.get(test) != PASSED:
                problems.append(f"{test} (both paths of {module}) did not run and pass")
        switches = unknown_switches()
        if switches:
            problems.append(f"untraced STOREEDGE_PURE switches: {', '.join(switches)}")
        reasons = {item.nodeid: self._reason(item, tainted) for item in self.items}
        # a kernel result may be cached for the module's other tests (a module global, a
        # module-scoped fixture of another name): a module with one kernel user is kept whole
        users = {n.split("::")[0] for n, r in reasons.items()
                 if r is not None and r != NOT_PASSED}
        for n, r in reasons.items():
            if r is None and n.split("::")[0] in users:
                reasons[n] = "another test of its module reaches a kernel"
        doc = {"format": FORMAT, "sources": source_hashes(), "problems": problems,
               "clean": sorted(n for n, r in reasons.items() if r is None),
               "kept": {n: r for n, r in sorted(reasons.items()) if r is not None}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(doc, indent=0) + "\n")
        for child in self.children:
            child.log.unlink(missing_ok=True)
        try:
            self.trace_dir.rmdir()
        except OSError:
            pass                                  # a child still writing: left in /tmp


class Selector:
    """Pure pass: deselect the tests the native pass recorded clean."""

    def __init__(self, path: Path):
        self.path = path
        self.message = ""

    def _load(self) -> tuple[set[str], str]:
        """The clean node ids, or an empty set and why nothing is deselected."""
        from storeedge.native._backend import pure_forced   # the pass's own switch
        if not pure_forced():
            raise pytest.UsageError("--kernel-use-select is for the pure pass (STOREEDGE_PURE=1)")
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            return set(), f"no usable record {self.path} ({exc.__class__.__name__})"
        if doc.get("format") != FORMAT:
            return set(), f"record {self.path} has another format"
        if doc["problems"]:
            return set(), "record incomplete: " + "; ".join(doc["problems"])
        now = source_hashes()
        changed = sorted(k for k in set(now) | set(doc["sources"])
                         if now.get(k) != doc["sources"].get(k))
        other = [c for c in changed if not _is_test_module(c)]
        if other:
            return set(), (f"{len(other)} source file(s) changed since the native pass "
                           f"recorded: {', '.join(other[:5])}")
        # a changed test module: its own tests are kept (nothing else imports a test module)
        return {n for n in doc["clean"] if n.split("::")[0] not in changed}, ""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items) -> None:
        clean, why_not = self._load()
        drop = [i for i in items if i.nodeid in clean]
        if drop:
            keep = [i for i in items if i.nodeid not in clean]
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
            by_dir = Counter(i.nodeid.split("/")[1] if "/" in i.nodeid else "." for i in drop)
            self.message = (
                f"pure pass: deselected {len(drop)} of {len(drop) + len(keep)} tests that the "
                f"native pass recorded as never reaching a native kernel (not in the test, its "
                f"fixtures, its module's import or a child process) -- they run the same code "
                f"in both passes; {len(keep)} kept. Deselected by directory: "
                + ", ".join(f"{d} {n}" for d, n in sorted(by_dir.items())))
        else:
            self.message = f"pure pass: every test kept ({why_not or 'none recorded clean'})"

    def pytest_collection_finish(self, session) -> None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(self.message)      # shown with -q too
