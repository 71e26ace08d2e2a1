"""Every option an error's hint (or message) names is an option of each command that can raise it.

A hint says the fix; one that names `--tag` to a command without it (as `doki deploy` outside a git checkout once did)
sends the user to a usage error. The walk is static, over the source:

- the texts: the message and hint of every `DokiError` and `EmulatorError` made, every `….hint = …`, and every
  `hint=` passed to a function (a function shared by commands with different options takes its hint from its caller),
  with the strings the names in them hold;
- in each text, every `--flag` (and `-f`): one that follows `doki COMMAND` in the same clause (up to a backtick, a `;`
  or a `, or `) is an option of that command; one after another tool's name (`gcloud run deploy --cpu`) is that tool's,
  and left alone; any other is an option of every command the text can be raised from (the global options are
  options of every command);
- which commands those are: the commands whose code can reach the function the text is in. From a command's
  function the walk follows the functions and classes its code names (imported, or of its own module, or as an
  attribute of a module), and of each class reached, the methods whose names the code reached reads. A text in
  `doki_cli.main` (the root renders every command's errors) can be raised from any command.

The emulator imports nothing of doki (an import-linter contract): doki's objects reach it through interfaces it owns,
and it reports their failures in its own words, never with their hints. What it calls on them is not followed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache

import pytest
import typer
from typer.core import TyperGroup

from doki_cli.main import app
from tests.helpers import REPO

PACKAGE = REPO / "doki_cli"
ERRORS = ("DokiError", "EmulatorError")
DUNDER = re.compile(r"__\w+__")  # methods Python calls itself: __init__, __enter__, __call__, ...

# The command tree: each command's path, its options (its own, the global ones, --help), and its function.

Path_ = tuple[str, ...]
ROOT = typer.main.get_command(app)
GLOBAL = {flag for param in ROOT.params for flag in (*param.opts, *param.secondary_opts)} - {"--version"}
VALUED = {
    flag
    for param in ROOT.params
    if not (getattr(param, "is_flag", True) or getattr(param, "count", False))
    for flag in param.opts
}


def _walk(command: object, path: Path_) -> Iterator[tuple[Path_, object]]:
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


OPTIONS = {
    path: {flag for param in getattr(command, "params", []) for flag in (*param.opts, *param.secondary_opts)}
    | GLOBAL
    | {"-h", "--help"}
    for path, command in _walk(ROOT, ())
}
# A unit of code: (module, top-level function or class) or (module, "Class.method").
Unit = tuple[str, str]
ENTRIES: dict[Path_, Unit] = {
    path: (function.__module__, function.__name__)
    for path, command in _walk(ROOT, ())
    if path and (function := getattr(getattr(command, "callback", None), "__wrapped__", None)) is not None
}


def shown(path: Path_) -> str:
    return " ".join(("doki", *path))


# The source.

MODULES = {
    ".".join(file.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): file
    for file in sorted(PACKAGE.rglob("*.py"))
}
Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@cache
def units(module: str) -> dict[str, Definition]:
    """The module's top-level functions and classes, and its classes' methods as `Class.method`."""
    found: dict[str, Definition] = {}
    for node in ast.parse(MODULES[module].read_text()).body:
        if isinstance(node, Definition):
            found[node.name] = node
            if isinstance(node, ast.ClassDef):
                for method in node.body:
                    if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                        found[f"{node.name}.{method.name}"] = method
    return found


def _own(node: ast.AST, *, within_class: bool = False) -> Iterator[ast.AST]:
    """What runs as part of `node`: not what only type checkers read, nor (of a class) its methods' bodies."""
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        return
    yield node
    for child in ast.iter_child_nodes(node):
        if within_class and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        yield from _own(child)


def _imports(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """(local name, `module` or `module:name`) for each name of doki_cli that `node` imports (constants aside)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in MODULES:
                yield alias.asname or alias.name, alias.name
        return
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".strip(".")
    for alias in node.names:
        if f"{base}.{alias.name}" in MODULES:
            yield alias.asname or alias.name, f"{base}.{alias.name}"
        elif base in MODULES and alias.name in units(base):
            yield alias.asname or alias.name, f"{base}:{alias.name}"


@cache
def _module_names(module: str) -> dict[str, str]:
    """What the module's own imports (those outside its functions and classes) bind."""
    return {
        local: target
        for statement in ast.parse(MODULES[module].read_text()).body
        if not isinstance(statement, Definition)
        for node in _own(statement)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for local, target in _imports(module, node)
    }


@cache
def _named(unit: Unit) -> tuple[frozenset[Unit], frozenset[str]]:
    """The units `unit`'s code names, and the attributes it reads (the methods it may call)."""
    module, name = unit
    node = units(module)[name]
    body = list(_own(node, within_class=isinstance(node, ast.ClassDef)))
    bound = dict(_module_names(module))
    for inner in body:
        if isinstance(inner, ast.Import | ast.ImportFrom):
            bound.update(_imports(module, inner))
    named: set[Unit] = set()
    read: set[str] = set()

    def target(what: str, attribute: str | None) -> None:
        other, _, definition = what.partition(":")
        if definition:
            named.add((other, definition))
        elif attribute in units(other):
            named.add((other, attribute))
        elif attribute is None:  # a module handed on whole: anything in it
            named.update((other, each) for each in units(other) if "." not in each)

    for inner in body:
        if isinstance(inner, ast.Attribute):
            read.add(inner.attr)
            if isinstance(inner.value, ast.Name) and inner.value.id in bound:
                target(bound[inner.value.id], inner.attr)
        elif isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Load):
            if inner.id in units(module) and inner.id != name:
                named.add((module, inner.id))
            elif inner.id in bound and ":" in bound[inner.id]:
                target(bound[inner.id], None)
    return frozenset(named), frozenset(read)


@cache
def reach(path: Path_) -> frozenset[Unit]:
    """The units command `path` can run: from its function, what each reached unit names, and the methods of the
    classes reached whose names the code reached reads; until nothing more is found."""
    reached: set[Unit] = set()
    read: set[str] = set()
    todo = [ENTRIES[path]]
    while todo:
        while todo:
            unit = todo.pop()
            if unit in reached:
                continue
            reached.add(unit)
            named, attributes = _named(unit)
            todo += named
            if not unit[0].startswith("doki_cli.emulator"):
                read |= attributes
        todo = [
            (module, name)
            for module, owner in reached
            for name in units(module)
            if name.startswith(f"{owner}.")
            and (DUNDER.fullmatch(name.split(".")[1]) or name.split(".")[1] in read)
            and (module, name) not in reached
        ]
    return frozenset(reached)


def raised_from(unit: Unit) -> list[Path_]:
    if unit[0] == "doki_cli.main":
        return [path for path in OPTIONS if path]
    return [path for path in ENTRIES if unit in reach(path)]


# The texts: every error's message and hint, with what the names in them hold.


def _bound(scope: ast.AST, name: str) -> Iterator[ast.expr]:
    """What `name` may hold in `scope`: what is assigned to it, what a loop binds it to, a parameter's default."""
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            yield node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            if node.target.id == name and node.value is not None:
                yield node.value
        elif isinstance(node, ast.For) and any(isinstance(t, ast.Name) and t.id == name for t in ast.walk(node.target)):
            yield node.iter
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            positional = [*arguments.posonlyargs, *arguments.args]
            defaults = zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults, strict=True)
            for argument, default in [*defaults, *zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)]:
                if argument.arg == name and default is not None:
                    yield default


def texts(expression: ast.expr, scopes: list[ast.AST], seen: frozenset[str] = frozenset()) -> Iterator[str]:
    """The texts `expression` may evaluate to: its strings (an f-string with `{}` for each value), and those of the
    names, containers, conditionals and `.format()`s it is made of. What a call returns is not followed."""
    match expression:
        case ast.Constant(value=str(value)):
            yield value
        case ast.JoinedStr(values=values):
            yield "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in values)
            for part in values:
                if isinstance(part, ast.FormattedValue):
                    yield from texts(part.value, scopes, seen)
        case ast.Name(id=name) if name not in seen:
            for scope in scopes:
                for value in _bound(scope, name):
                    yield from texts(value, scopes, seen | {name})
        case ast.IfExp(body=body, orelse=orelse):
            yield from texts(body, scopes, seen)
            yield from texts(orelse, scopes, seen)
        case ast.BoolOp(values=values) | ast.Tuple(elts=values) | ast.List(elts=values) | ast.Set(elts=values):
            for value in values:
                yield from texts(value, scopes, seen)
        case ast.Dict(values=values):
            for value in values:
                yield from texts(value, scopes, seen)
        case ast.BinOp(left=left, right=right):
            yield from texts(left, scopes, seen)
            yield from texts(right, scopes, seen)
        case ast.Subscript(value=value):
            yield from texts(value, scopes, seen)
        case ast.Call(func=ast.Attribute(value=value, attr="format" | "join" | "strip" | "get"), args=args):
            yield from texts(value, scopes, seen)
            for argument in args:
                yield from texts(argument, scopes, seen)


def _error_texts_of(node: ast.AST) -> Iterator[ast.expr]:
    """The expressions of `node` that are an error's message or hint."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id in ERRORS:
            yield from node.args[1:3]
            yield from (keyword.value for keyword in node.keywords if keyword.arg in ("message", "hint"))
        else:
            yield from (keyword.value for keyword in node.keywords if keyword.arg == "hint")
    elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "hint" for t in node.targets):
        yield node.value


def error_texts() -> Iterator[tuple[Unit, int, str]]:
    """(the unit it is in, its line, the text) of every message and hint doki_cli's errors are made with."""
    for module in MODULES:
        statements = ast.parse(MODULES[module].read_text()).body
        constants = ast.Module(body=[s for s in statements if not isinstance(s, Definition)], type_ignores=[])
        for name, definition in units(module).items():
            scopes: list[ast.AST] = [definition, constants]
            for node in _own(definition, within_class=isinstance(definition, ast.ClassDef)):
                for expression in _error_texts_of(node):
                    for text in texts(expression, scopes):
                        yield (module, name), node.lineno, text


# The options a text names, and the command each belongs to.

TOOL = re.compile(r"(?<![\w./-])(doki|gcloud|docker|git|pip|kill)(?![\w.-])")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
CLAUSE = re.compile(r"`|;|, or |\n")


def command_path(words: list[str]) -> Path_:
    """The command `doki WORDS…` names: its words that are command names, options skipped."""
    path: Path_ = ()
    command: object = ROOT
    value = False  # the word is the value of the global option before it
    for word in words:
        if word.startswith("-") or value:
            value = word in VALUED
            continue
        subcommands = command.commands if isinstance(command, TyperGroup) else {}
        if word not in subcommands:
            break
        path, command = (*path, word), subcommands[word]
    return path


def mentions(text: str) -> Iterator[tuple[str, Path_ | None]]:
    """Each doki option `text` names, with the command of the `doki …` it is part of (None when it is in none)."""
    for clause in CLAUSE.split(text):
        tools = list(TOOL.finditer(clause))
        for flag in FLAG.finditer(clause):
            before = [tool for tool in tools if tool.start() < flag.start()]
            if not before:
                yield flag.group(1), None
            elif before[-1].group(1) == "doki":
                after = [tool.start() for tool in tools if tool.start() > before[-1].start()]
                snippet = clause[before[-1].end() : after[0] if after else len(clause)]
                yield flag.group(1), command_path(re.findall(r"[\w-]+", snippet))


def problems() -> Iterator[str]:
    for unit, line, text in error_texts():
        where = f"{MODULES[unit[0]].relative_to(REPO)}:{line}"
        for flag, path in mentions(text):
            if path is not None:
                if flag not in OPTIONS[path]:
                    yield f"{where}: {flag} is not an option of `{shown(path)}`: {text!r}"
                continue
            commands = raised_from(unit)
            if not commands and not any(flag in options for options in OPTIONS.values()):
                yield f"{where}: {flag} is an option of no command: {text!r}"
            lacking = [shown(path) for path in commands if flag not in OPTIONS[path]]
            if lacking:
                yield f"{where}: {flag}, raised from {', '.join(lacking)}, which lack it: {text!r}"


def test_every_option_an_error_names_is_one_the_commands_raising_it_have() -> None:
    assert list(problems()) == []


# The walk itself: what it reads, so the test above cannot pass by reading nothing.


def test_the_walk_reads_the_hints_of_errors_made_anywhere_in_doki_cli() -> None:
    found = {(unit, text) for unit, _, text in error_texts()}
    assert (
        ("doki_cli.commands._plan", "confirm_plan"),
        "pass --yes to apply it without asking (--dry-run shows the plan)",
    ) in (found)
    # Through a name (and a module's constant), and a hint handed to a shared function by its caller.
    assert any(
        unit[0] == "doki_cli.deploy.preflight" and text == "--skip-checks deploys anyway" for unit, text in found
    )
    assert any(unit == ("doki_cli.commands.deploy", "deploy") and "--image" in text for unit, text in found)
    assert any(unit == ("doki_cli.gcp.run", "CloudRun.update") for unit, _ in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("commit your work (git init && git commit), or pass --tag VERSION", [("--tag", None)]),
        ("build it (doki build --push), or pass --image", [("--push", ("build",)), ("--image", None)]),
        (
            "`doki --env staging cors add ORIGIN --save` writes it",
            [("--env", ("cors", "add")), ("--save", ("cors", "add"))],
        ),
        ("gcloud run services update NAME --cpu-throttling; then -v", [("-v", None)]),
        ("deploy it with `doki deploy` (or check --project/--region)", [("--project", None), ("--region", None)]),
        ("the doki.toml --config names, tagged -dirty", [("--config", None)]),
    ],
)
def test_an_option_belongs_to_the_doki_command_it_follows_or_else_to_the_raising_one(
    text: str, expected: list[tuple[str, Path_ | None]]
) -> None:
    assert list(mentions(text)) == expected


def test_the_commands_that_can_raise_a_text_are_those_whose_code_reaches_it() -> None:
    assert raised_from(("doki_cli.gitinfo", "resolve_commit")) == [("release",), ("preview",)]
    assert set(raised_from(("doki_cli.commands._plan", "review"))) == {
        ("deploy",),
        ("release",),
        ("rollback",),
        ("scale",),
        ("cors", "add"),
        ("cors", "remove"),
        ("cors", "set"),
    }
    assert ("status",) in raised_from(("doki_cli.gcp.run", "CloudRun.get"))
    # The engine's build is run by the emulator too, which reports its failures in its own words.
    assert ("emulator", "start") not in raised_from(("doki_cli.engine", "DockerEngine.build"))
    assert ("build",) in raised_from(("doki_cli.engine", "DockerEngine.build"))
    assert raised_from(("doki_cli.main", "DokiGroup.invoke")) == [path for path in OPTIONS if path]
