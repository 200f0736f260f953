"""The one scanner of refusals: each ``...Error("Expected ...")`` (or ``...Error.of(...)``) under harness/ and
backends/ names its fix once, after "To fix". Helpers only: tests/test_refusal_form.py runs it on the whole tree.

A message is read as each text it may hold: string literals and f-strings (a value filled in reads "{...}"), and
what the names it fills in may hold (module constants, imported ones such as SQLITE_FIX too; local variables; each
side of a conditional or an ``or``, and each assignment, a reading of its own; a parameter, its default and what
each call in the tree passes), and the returns of the tree's own helpers (damaged_file_fix(path)). A message built
apart from its raise is caught where a name or helper carries it to the raise, and otherwise by the function holding
its "Expected ..." text: that function must name a fix (the data layer's scan did so)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("harness", "backends")
MARKER = "To fix"  # named once: "To fix, ..." and no second "To fix" (a filled-in refusal's, "To fix the search")
FIX = "To fix,"
START = "Expected "
FORM = re.compile(r"Expected .+\. Received: .+\. To fix, [a-z].+\.", re.S)
HOLE = "{...}"
_Function = ast.FunctionDef | ast.AsyncFunctionDef
_SELF = ("self", "cls")
_DEPTH = 24  # names and helpers read within one another: deeper is a cycle (x = y; y = x)


@dataclass(frozen=True)
class Refusal:
    """One refusal: where it is raised and each text its message may read."""

    path: str  # relative to the root, with "/"
    function: str  # the qualified name of the function raising it ("Class.method"), "<module>" at the top level
    line: int
    readings: tuple[str, ...]
    # None for a message a raise takes; for an "Expected ..." text no raise was seen to take (built apart and
    # raised elsewhere), whether the function holding it names a fix anywhere
    function_fixes: bool | None = None

    @property
    def key(self) -> str:
        return f"{self.path}::{self.function}"

    def lacks_a_fix(self) -> bool:
        return any(FIX not in text for text in self.readings) and not self.function_fixes

    def says_it_twice(self) -> bool:
        return any(text.count(MARKER) > 1 for text in self.readings)

    def __str__(self) -> str:
        worst = sorted(self.readings, key=lambda t: (FIX in t, -t.count(MARKER)))[0]
        return f"{self.path}:{self.line} ({self.function}): {' '.join(worst.split())[:300]}"


def _collapse(texts: Iterable[str]) -> tuple[str, ...]:
    """The readings that differ in what the scan asks of them (how many markers, up to 2; whether one reads "To fix,";
    whether it starts as a refusal): the product of several conditionals would otherwise multiply."""
    kept: dict[tuple[int, bool, bool], str] = {}
    for text in texts:
        kept.setdefault((min(text.count(MARKER), 2), FIX in text, text.startswith(START)), text)
    return tuple(kept.values())


def _product(parts: Iterable[tuple[str, ...]], between: str = "") -> tuple[str, ...]:
    readings: tuple[str, ...] | None = None
    for part in parts:
        readings = part if readings is None else _collapse(a + between + b for a in readings for b in part)
    return readings or ("",)


_Values = dict[str, list[tuple[ast.stmt, ast.expr]]]


def _assignments(nodes: Iterable[ast.AST]) -> _Values:
    """Each name the nodes assign -> (statement, value) of each value it is given (``x += v``: ``x + v``)."""
    out: _Values = {}
    for node in nodes:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append((node, node.value))
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and isinstance(node.op, ast.Add):
            value = ast.BinOp(ast.Name(node.target.id), ast.Add(), node.value)
            out.setdefault(node.target.id, []).append((node, value))
    return out


def _name_of(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


@dataclass(frozen=True)
class _Site:
    """A node where it stands: its module, the qualified name of its function, the outermost function (whose
    assignments it may read, with the nested ones') and the innermost (whose parameters it may read), the class
    whose method that is ("" for a plain function) and the class whose body holds the node ("" outside one)."""

    module: Module
    qualname: str
    outer: _Function | None
    inner: _Function | None
    owner: str = ""
    klass: str = ""


@dataclass
class Module:
    """A parsed module (not frozen: it keeps each function's assignments and its nodes' parents once read)."""

    path: str
    tree: ast.Module
    constants: _Values
    functions: dict[str, list[_Function]]
    imported: set[str]  # the names ``from ... import`` brings in: constants and helpers of other modules
    locals_of: dict[int, _Values] = field(default_factory=dict)
    parents: dict[int, ast.AST] = field(default_factory=dict)

    def assigned(self, outer: _Function | None, name: str, use: ast.AST) -> list[tuple[ast.stmt, ast.expr]]:
        """The values of ``name`` that may reach ``use``: assigned above it, and not in a block that ends before
        it (``if partial: fix = ...; return ...`` leaves the ``fix`` below to the code below)."""
        if outer is None:
            return []
        if id(outer) not in self.locals_of:
            self.locals_of[id(outer)] = _assignments(ast.walk(outer))
        if not self.parents:
            self.parents = {id(c): n for n in ast.walk(self.tree) for c in ast.iter_child_nodes(n)}
        values = self.locals_of[id(outer)].get(name, [])
        return [(s, v) for s, v in values if s.lineno <= getattr(use, "lineno", s.lineno) and self._reach(s, use)]

    def _reach(self, statement: ast.stmt, use: ast.AST) -> bool:
        line = getattr(use, "lineno", statement.lineno)
        node: ast.AST = statement
        while id(node) in self.parents:
            parent = self.parents[id(node)]
            for block in (getattr(parent, f, None) for f in ("body", "orelse", "finalbody", "handlers")):
                if isinstance(block, list) and node in block and not block[0].lineno <= line <= block[-1].end_lineno:
                    if isinstance(block[-1], ast.Return | ast.Raise | ast.Continue | ast.Break):
                        return False
            node = parent
        return True


def _walk(module: Module) -> Iterator[tuple[ast.AST, _Site]]:
    """Each node of the module, with where it stands."""
    stack: list[tuple[ast.AST, _Site]] = [(n, _Site(module, "", None, None)) for n in reversed(module.tree.body)]
    while stack:
        node, site = stack.pop()
        yield node, site
        inner = site
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{site.qualname}.{node.name}" if site.qualname else node.name
            if isinstance(node, ast.ClassDef):
                inner = _Site(module, name, site.outer, site.inner, site.owner, node.name)
            else:
                inner = _Site(module, name, site.outer or node, node, site.klass)
        stack.extend((child, inner) for child in reversed(list(ast.iter_child_nodes(node))))


@dataclass(frozen=True)
class Tree:
    """The parsed modules; the constants and functions any of them define (one may import another's), and the
    calls of each function name (what they pass its parameters)."""

    modules: list[Module]
    constants: dict[str, list[tuple[Module, ast.expr]]] = field(default_factory=dict)
    functions: dict[str, list[tuple[Module, _Function]]] = field(default_factory=dict)
    calls: dict[str, list[tuple[ast.Call, _Site]]] = field(default_factory=dict)
    bases: dict[str, list[str]] = field(default_factory=dict)  # each class -> the names of its bases

    @classmethod
    def of(cls, root: Path, files: Iterable[Path]) -> Tree:
        modules = []
        for path in sorted(files):
            tree = ast.parse(path.read_text(), str(path))
            functions: dict[str, list[_Function]] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    functions.setdefault(node.name, []).append(node)
            constants = _assignments(n for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign))
            imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
            modules.append(Module(path.relative_to(root).as_posix(), tree, constants, functions, imported))
        out = cls(modules)
        for module in modules:
            for name, values in module.constants.items():
                out.constants.setdefault(name, []).extend((module, v) for _, v in values)
            for name, defs in module.functions.items():
                out.functions.setdefault(name, []).extend((module, d) for d in defs)
            for node, site in _walk(module):
                if isinstance(node, ast.ClassDef):
                    out.bases.setdefault(node.name, []).extend(_name_of(b) for b in node.bases)
                if isinstance(node, ast.Call) and _name_of(node.func):
                    out.calls.setdefault(_name_of(node.func), []).append((node, site))
        return out

    def is_a(self, name: str, owner: str, depth: int = 0) -> bool:
        """Whether class ``name`` is ``owner`` or derives from it (by the names of the tree's classes)."""
        if name == owner:
            return True
        return depth < _DEPTH and any(self.is_a(b, owner, depth + 1) for b in self.bases.get(name, []))

    def calls_of(self, function: _Function, owner: str) -> list[tuple[ast.Call, _Site]]:
        """The calls that may call ``function`` (a method of ``owner``, or a plain function for ""): ``f(...)``;
        ``self.m(...)``, ``cls.m(...)`` or ``C.m(...)`` for a class C that is ``owner`` or derives from it.
        None for ``__init__`` and the like (its calls name the class)."""
        if function.name.startswith("__"):
            return []
        calls = self.calls.get(function.name, [])
        if not owner:
            return [(c, s) for c, s in calls if isinstance(c.func, ast.Name)]
        methods = [(c.func.value, c, s) for c, s in calls if isinstance(c.func, ast.Attribute)]
        return [(c, s) for on, c, s in methods if _name_of(on) in _SELF or self.is_a(_name_of(on), owner)]


@dataclass
class _Reader:
    """Reads the texts an expression may hold where it stands, noting each literal it reads."""

    tree: Tree
    site: _Site
    read: set[int] = field(default_factory=set)  # id() of each string literal taken into a reading
    busy: frozenset[str] = frozenset()  # the names and helpers being read (a name assigned from itself)

    def at(self, site: _Site, busy: str) -> _Reader:
        return _Reader(self.tree, site, self.read, self.busy | {busy})

    def texts(self, node: ast.AST | None) -> tuple[str, ...]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.read.add(id(node))
            return (node.value,)
        if isinstance(node, ast.Constant) and node.value is None:  # a parameter's default: ``fix or ...`` skips it
            return ("",)
        if isinstance(node, ast.JoinedStr):
            return _product(self.texts(v) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.texts(node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return _product([self.texts(node.left), self.texts(node.right)])
        if isinstance(node, ast.IfExp):
            return _collapse([*self.texts(node.body), *self.texts(node.orelse)])
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):  # an empty text gives way to the next
            readings = [self.texts(v) for v in node.values]
            return _collapse([t for part in readings[:-1] for t in part if t] + list(readings[-1]))
        if isinstance(node, ast.Name):
            return self._name(node.id, node)
        if isinstance(node, ast.Attribute) and node.attr.isupper():  # a constant of a class or module
            return self._name(node.attr, node)
        if isinstance(node, ast.Call):
            return self._call(node)
        return (HOLE,)

    def _name(self, name: str, use: ast.AST) -> tuple[str, ...]:
        site = self.site
        if len(self.busy) > _DEPTH:
            return (HOLE,)
        local = [v for _, v in site.module.assigned(site.outer, name, use)]
        if name in self.busy:  # x = x + "...": its other values, then what the parameter x is given
            local = [v for v in local if name not in {n.id for n in ast.walk(v) if isinstance(n, ast.Name)}]
        out = [t for v in local for t in self.at(site, name).texts(v)]
        constants = [(site.module, v) for _, v in site.module.constants.get(name, [])]
        if not constants and name in site.module.imported:
            constants = self.tree.constants.get(name, [])
        if not local and f"const:{name}" not in self.busy:
            out += [t for m, v in constants for t in self.at(_Site(m, "", None, None), f"const:{name}").texts(v)]
        if name in self.busy or not local:
            out += self._passed(name)
        return _collapse(out) or (HOLE,)

    def _parameter(self, name: str) -> ast.arg | None:
        """The parameter ``name`` of the function, where it takes a text (a ``str`` annotation)."""
        inner = self.site.inner
        args = inner.args if inner else None
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs] if args else []
        found = next((a for a in every if a.arg == name), None)
        return found if found and "str" in ast.unparse(found.annotation or ast.Constant("")) else None

    def _passed(self, name: str) -> list[str]:
        """What a parameter may hold: its default, and what each call of its function passes it."""
        inner, param = self.site.inner, self._parameter(name)
        if inner is None or param is None or f"{id(inner)}:{name}" in self.busy:
            return []
        args = inner.args
        positional = [*args.posonlyargs, *args.args]
        defaults = dict(zip([a.arg for a in positional][::-1], args.defaults[::-1], strict=False))
        defaults |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None}
        out = list(self.at(self.site, f"{id(inner)}:{name}").texts(defaults[name])) if name in defaults else []
        index = [a.arg for a in positional].index(name) if param in positional else None
        for call, site in self.tree.calls_of(inner, self.site.owner):
            skip = 1 if self.site.owner and positional and positional[0].arg in _SELF else 0
            given = [k.value for k in call.keywords if k.arg == name]
            if index is not None and 0 <= index - skip < len(call.args):
                given.append(call.args[index - skip])
            out += [t for g in given for t in self.at(site, f"{id(inner)}:{name}").texts(g)]
        return out

    def _call(self, node: ast.Call) -> tuple[str, ...]:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "format":
            return self.texts(func.value)
        name = func.id if isinstance(func, ast.Name) else ""
        module = self.site.module
        defs = [(module, d) for d in module.functions.get(name, [])]
        defs = defs or (self.tree.functions.get(name, []) if name in module.imported else [])
        if not defs or f"{name}()" in self.busy:
            return (HOLE,)
        out: list[str] = []
        for where, function in defs:
            reader = self.at(_Site(where, function.name, function, function), f"{name}()")
            returns = [n.value for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
            out.extend(t for value in returns for t in reader.texts(value))
        return _collapse(out) or (HOLE,)


def _error_call(node: ast.Call, raised: set[int]) -> bool:
    """``SomeError(...)``, ``module.SomeError(...)``, ``SomeError.of(...)``, any call ``raised`` (``raise
    RunBeingDriven(...)``), and an error's own ``super().__init__(...)`` or ``cls(...)``, with arguments."""
    if not (node.args or node.keywords):
        return False
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "of":
        return _name_of(func.value).endswith("Error")
    if isinstance(func, ast.Attribute) and func.attr == "__init__" and isinstance(func.value, ast.Call):
        return _name_of(func.value.func) == "super"
    return id(node) in raised or _name_of(func).endswith("Error") or _name_of(func) == "cls"


def _message(reader: _Reader, call: ast.Call) -> tuple[str, ...]:
    """What a refusal may say: its first argument's texts; for ``SomeError.of(...)``, its arguments' texts joined,
    after "Expected " where the first is not one (``FileProblemError.of(path, expected, problem, fix)``)."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "of"):
        return reader.texts(call.args[0]) if call.args else ("",)
    parts = [reader.texts(a) for a in [*call.args, *(k.value for k in call.keywords)]]
    if parts and not any(t.startswith(START) for t in parts[0]):
        return tuple(START + t for t in _product(parts[1:], " "))
    return _product(parts, " ")


def _docstrings(tree: ast.Module) -> set[int]:
    holders = [n for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)]
    return {id(n.body[0].value) for n in holders if n.body and isinstance(n.body[0], ast.Expr)}


def module_refusals(tree: Tree, module: Module) -> Iterator[Refusal]:
    """The module's refusals, then each "Expected ..." text no refusal read, as one built apart."""
    read: set[int] = set()
    texts: list[tuple[ast.Constant, _Site]] = []
    docstrings = _docstrings(module.tree)
    raised = {id(n.exc) for n in ast.walk(module.tree) if isinstance(n, ast.Raise)}
    for node, site in _walk(module):
        qualname = site.qualname or "<module>"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(START):
            if id(node) not in docstrings:
                texts.append((node, site))
        if not (isinstance(node, ast.Call) and _error_call(node, raised)):
            continue
        reader = _Reader(tree, site)
        readings = tuple(t for t in _message(reader, node) if t.startswith(START))
        if readings:
            read |= reader.read  # its texts, built apart or not, are this refusal's
            yield Refusal(module.path, qualname, node.lineno, readings)
    for node, site in texts:
        if id(node) not in read:
            reader = _Reader(tree, site)
            holder = site.outer if site.outer is not None else module.tree
            said = [
                t
                for n in ast.walk(holder)
                if isinstance(n, ast.Constant | ast.Call | ast.Name)
                for t in reader.texts(n)
            ]
            qualname = site.qualname or "<module>"
            yield Refusal(module.path, qualname, node.lineno, (node.value,), any(FIX in t for t in said))


def scanned_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for folder in SCANNED for p in (root / folder).rglob("*.py"))


def scan(root: Path = ROOT, files: Iterable[Path] | None = None) -> list[Refusal]:
    """Every refusal of ``files`` (each .py file under harness/ and backends/ by default)."""
    tree = Tree.of(root, scanned_files(root) if files is None else files)
    return [refusal for module in tree.modules for refusal in module_refusals(tree, module)]


def unmended(found: Iterable[Refusal], allowed: Iterable[str]) -> list[str]:
    """Each refusal that lacks its fix or names it twice, outside the ``path::function`` entries of ``allowed``
    (a refusal that names its fix twice is never allowed)."""
    keys = set(allowed)
    out = [f"no fix: {r}" for r in found if r.lacks_a_fix() and r.key not in keys]
    return out + [f"two fixes: {r}" for r in found if r.says_it_twice()]


def stale(entries: Iterable[str], found: Iterable[Refusal]) -> list[str]:
    """The ``path::function`` entries of an allow-list that name no refusal lacking its fix (any more)."""
    keys = {r.key for r in found if r.lacks_a_fix()}
    return sorted(set(entries) - keys)
