"""Enforce the sans-IO rules of docs/ARCHITECTURE.md on the core, by reading its source with ast.

Checked files: every module of the core packages (bpv7, bpv6, bpsec, tcpcl, udpcl, discovery,
engine, routing, sbd, cla/framing*) and of the simulator (sim, which runs in virtual time),
the base modules (eid, errors, dtntime), and every other dtncloud module they import,
followed transitively (a core module must not do I/O through a helper either).
Packages that do not exist yet are skipped.

Rule 1, no I/O and no clock: no import of asyncio, socket, ssl, time, threading, aiosqlite or
serial (also not through importlib/__import__), no reference to datetime.now/utcnow/today or
time.time.
Rule 2, no module-level mutable state: no empty ``{}``/``[]``/``set()``/``dict()``/``list()``,
defaultdict, deque, ... bound at module level or in a class body (shared by every instance), and
no ``global`` statement. Non-empty literal tables (``NAMES = {1: "x"}``) are allowed.
Rule 3, injected randomness: no module-level functions of ``random`` (``random.choice``, ...);
``random.Random`` as a type or constructor is fine.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# sim: the simulator runs in virtual time, so it keeps the core's rules (no clock, no I/O
# loop, injected randomness) although it is a shell.
CORE_PACKAGES = (
    "bpv7",
    "bpv6",
    "bpsec",
    "tcpcl",
    "udpcl",
    "discovery",
    "engine",
    "routing",
    "sbd",
    "sim",
)
CORE_GLOBS = ("cla/framing*",)
BASE_MODULES = ("eid.py", "errors.py", "dtntime.py")

FORBIDDEN_MODULES = frozenset(
    {"asyncio", "socket", "ssl", "time", "threading", "aiosqlite", "serial"}
)
# Fully qualified names that read the wall clock.
CLOCK_READS = frozenset(
    {
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
    }
)
RANDOM_ALLOWED = frozenset({"Random", "SystemRandom"})
# Calls that create an empty mutable container; only flagged without arguments.
EMPTY_CONTAINER_CALLS = frozenset({"dict", "list", "set", "bytearray"})
# Calls that create a mutable container whatever their arguments.
MUTABLE_CONTAINER_CALLS = frozenset(
    {
        "collections.defaultdict",
        "collections.OrderedDict",
        "collections.deque",
        "collections.Counter",
        "collections.ChainMap",
        "weakref.WeakValueDictionary",
        "weakref.WeakKeyDictionary",
        "weakref.WeakSet",
    }
)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class _Checker(ast.NodeVisitor):
    """Collects rule violations in one module."""

    def __init__(self, path: str, tree: ast.Module) -> None:
        self.path = path
        self.violations: list[Violation] = []
        # Local name -> fully qualified name, from every import in the file (scope-insensitive,
        # which is good enough for a lint that errs on the side of flagging).
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def report(self, node: ast.AST, message: str) -> None:
        self.violations.append(Violation(self.path, getattr(node, "lineno", 0), message))

    def qualified_name(self, node: ast.expr) -> str | None:
        """``dt.datetime.now`` -> ``datetime.datetime.now`` when ``dt`` is ``datetime``."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(self.aliases.get(node.id, node.id))
        return ".".join(reversed(parts))

    # -- rule 1 and 3: imports --------------------------------------------------------------
    def _check_module_name(self, node: ast.AST, module: str) -> None:
        top = module.split(".")[0]
        if top in FORBIDDEN_MODULES:
            self.report(node, f"imports {module} (rule 1: the core does no I/O and reads no clock)")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module_name(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._check_module_name(node, node.module)
            if node.module == "random":
                for alias in node.names:
                    if alias.name not in RANDOM_ALLOWED:
                        self.report(
                            node,
                            f"imports random.{alias.name} (rule 3: take an injected random.Random)",
                        )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualified_name(node.func)
        if (
            name in {"importlib.import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self._check_module_name(node, node.args[0].value)
        self.generic_visit(node)

    # -- rule 1 and 3: clock reads and the global random generator ---------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.qualified_name(node)
        if name is not None:
            self._check_reference(node, name)
            return  # the inner parts of a dotted name are not references of their own
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.aliases:
            self._check_reference(node, self.aliases[node.id])

    def _check_reference(self, node: ast.AST, name: str) -> None:
        if name in CLOCK_READS:
            self.report(node, f"uses {name} (rule 1: time comes in as `now`)")
        parts = name.split(".")
        if len(parts) == 2 and parts[0] == "random" and parts[1] not in RANDOM_ALLOWED:
            self.report(node, f"uses {name} (rule 3: take an injected random.Random)")

    # -- rule 2: module-level mutable state -------------------------------------------------
    def visit_Global(self, node: ast.Global) -> None:
        self.report(node, f"global {', '.join(node.names)} (rule 2: no module-level state)")

    def check_bindings(self, body: Iterable[ast.stmt], where: str) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                kind = self.mutable_kind(stmt.value)
                if kind:
                    self.report(stmt, f"{where} binds {kind} (rule 2: no module-level state)")
            elif isinstance(stmt, ast.ClassDef):
                self.check_bindings(stmt.body, f"class {stmt.name}")
            elif isinstance(stmt, ast.If | ast.With | ast.For | ast.While):
                self.check_bindings(stmt.body, where)
                self.check_bindings(getattr(stmt, "orelse", []), where)
            elif isinstance(stmt, ast.Try | ast.TryStar):
                for block in (stmt.body, stmt.orelse, stmt.finalbody):
                    self.check_bindings(block, where)
                for handler in stmt.handlers:
                    self.check_bindings(handler.body, where)

    def mutable_kind(self, value: ast.expr) -> str | None:
        if isinstance(value, ast.Dict) and not value.keys:
            return "an empty dict {}"
        if isinstance(value, ast.List) and not value.elts:
            return "an empty list []"
        if isinstance(value, ast.Call):
            name = self.qualified_name(value.func)
            if name in EMPTY_CONTAINER_CALLS and not value.args and not value.keywords:
                return f"an empty {name}()"
            if name in MUTABLE_CONTAINER_CALLS:
                return f"a {name}()"
        return None


def check_source(source: str, path: str = "<string>") -> list[Violation]:
    """Every rule violation in one module's source text."""
    tree = ast.parse(source, filename=path)
    checker = _Checker(path, tree)
    checker.visit(tree)
    checker.check_bindings(tree.body, "module")
    return sorted(checker.violations, key=lambda v: (v.line, v.message))


# -- which files are checked ----------------------------------------------------------------


def _python_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    elif path.suffix == ".py" and path.is_file():
        yield path


def _module_file(root: Path, module: str) -> Path | None:
    """The file of dotted ``module`` under ``root`` (the folder holding ``dtncloud/``)."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(root: Path, path: Path) -> Iterator[Path]:
    """dtncloud modules that the file at ``path`` imports (absolute or relative)."""
    # The package a relative import starts from: the folder of the file, for __init__.py too.
    package = list(path.relative_to(root).parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 >= len(package):
                    continue
                base = package[: len(package) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        for target in targets:
            if target.split(".")[0] != "dtncloud":
                continue
            # import a.b.c also runs a/__init__ and a/b/__init__.
            pieces = target.split(".")
            for end in range(1, len(pieces) + 1):
                found = _module_file(root, ".".join(pieces[:end]))
                if found is not None:
                    yield found


def core_files(root: Path = REPO_ROOT) -> list[Path]:
    """The core and base modules under ``root``, plus the dtncloud modules they import."""
    package = root / "dtncloud"
    start: list[Path] = []
    for name in CORE_PACKAGES:
        start.extend(_python_files(package / name))
    for pattern in CORE_GLOBS:
        for match in sorted(package.glob(pattern)):
            start.extend(_python_files(match))
    for name in BASE_MODULES:
        start.extend(_python_files(package / name))

    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(p for p in _imported_modules(root, path) if p not in seen)
    return sorted(seen)


# -- the tests ------------------------------------------------------------------------------

_CORE_FILES = core_files()


def test_core_files_are_found() -> None:
    assert REPO_ROOT / "dtncloud" / "errors.py" in _CORE_FILES


@pytest.mark.parametrize(
    "path", _CORE_FILES, ids=[str(p.relative_to(REPO_ROOT)) for p in _CORE_FILES]
)
def test_core_module_follows_the_rules(path: Path) -> None:
    relative = str(path.relative_to(REPO_ROOT))
    violations = check_source(path.read_text(encoding="utf-8"), relative)
    assert not violations, "docs/ARCHITECTURE.md rules broken:\n" + "\n".join(
        str(v) for v in violations
    )


# -- self-test: the checker catches what it should, and only that ---------------------------

BAD_SNIPPETS = {
    "import asyncio": 1,
    "import asyncio.subprocess": 1,
    "import socket as s": 1,
    "from ssl import SSLContext": 1,
    "import os\nimport time": 2,
    "def f():\n    from threading import Lock\n    return Lock()": 2,
    "import aiosqlite": 1,
    "import serial.tools.list_ports": 1,
    "import importlib\nm = importlib.import_module('socket')": 2,
    "from datetime import datetime\n\ndef f():\n    return datetime.now()": 4,
    "import datetime\n\ndef f():\n    return datetime.datetime.utcnow()": 4,
    "import datetime as dt\n\nclock = dt.datetime.now": 3,
    "from datetime import date\ntoday = date.today()": 2,
    "import random\n\ndef pick(xs):\n    return random.choice(xs)": 4,
    "from random import shuffle": 1,
    "REGISTRY = {}": 1,
    "NAMES: list[str] = []": 1,
    "SEEN = set()": 1,
    "TABLE = dict()": 1,
    "ITEMS = list()": 1,
    "import collections\nBY_KEY = collections.defaultdict(list)": 2,
    "from collections import deque\nQUEUE = deque()": 2,
    "try:\n    import x\nexcept ImportError:\n    CACHE = {}": 4,
    "class Router:\n    pass\n\nclass Registry:\n    known = {}": 5,
    "COUNT = 0\n\ndef bump():\n    global COUNT\n    COUNT += 1": 4,
}


@pytest.mark.parametrize(("source", "line"), list(BAD_SNIPPETS.items()))
def test_checker_catches(source: str, line: int) -> None:
    violations = check_source(source, "dtncloud/bpv7/example.py")
    assert violations, f"not caught:\n{source}"
    assert line in {v.line for v in violations}
    assert str(violations[0]).startswith(f"dtncloud/bpv7/example.py:{violations[0].line}: ")


CLEAN_SOURCE = '''
"""A module that keeps every rule."""
from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timezone

from ..errors import DtnError

__all__ = ["Clock", "NAMES", "from_dtn_ms"]

NAMES = {1: "one", 2: "two"}
ORDER = ["a", "b"]
EMPTY = frozenset()
TABLE = [i * 2 for i in range(256)]
NOW_FIELD = "now"


@dataclasses.dataclass(frozen=True)
class Clock:
    start_at: int
    tags: tuple[str, ...] = ()


def from_dtn_ms(now: int) -> datetime:
    seen = {}
    seen[now] = []
    return datetime.fromtimestamp(now / 1000, tz=timezone.utc)


def pick(rng: random.Random, items: list[int]) -> int:
    if not items:
        raise DtnError("empty")
    return rng.choice(items)
'''


def test_checker_accepts_code_that_keeps_the_rules() -> None:
    assert check_source(CLEAN_SOURCE) == []


def test_imports_are_followed_into_helper_modules(tmp_path: Path) -> None:
    package = tmp_path / "dtncloud"
    (package / "bpv7").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "bpv7" / "__init__.py").write_text("from .codec import decode\n")
    (package / "bpv7" / "codec.py").write_text("from ..wire import read\n")
    (package / "wire.py").write_text("import socket\n")
    (package / "runtime.py").write_text("import asyncio\n")  # not imported by the core

    files = core_files(tmp_path)

    assert package / "wire.py" in files
    assert package / "runtime.py" not in files
    violations = [v for f in files for v in check_source(f.read_text(), str(f))]
    assert [v.line for v in violations] == [1]
    assert "wire.py" in violations[0].path
