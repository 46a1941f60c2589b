"""Reads the Terraform in infra/ (python-hcl2) and evaluates the simple expressions the
consistency tests need: numbers, strings, `var.*` (defaults or overrides), `local.*`, arithmetic,
comparisons and a few pure functions. Anything else (resource attributes, conditionals) raises
`Unknown`, so a test only ever asserts on values it could really compute.
"""
from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"

_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
_WHOLE = re.compile(r"^\$\{(.*)\}$", re.S)
_PART = re.compile(r"\$\{([^{}]*)\}")
_FUNCTIONS = {
    "ceil": math.ceil,
    "floor": math.floor,
    "min": min,
    "max": max,
    "tostring": lambda v: _to_string(v),
    "length": len,
    "join": lambda sep, items: sep.join(items),
}


class Unknown(Exception):
    """The expression depends on something only known at apply time (or is not supported)."""


def _to_string(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class Module:
    directory: Path
    files: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path = INFRA) -> "Module":
        files = {p.name: hcl2.loads(p.read_text(), serialization_options=_OPTIONS)
                 for p in sorted(directory.glob("*.tf"))}
        return cls(directory, files)

    def text(self) -> str:
        return "\n".join((self.directory / name).read_text() for name in self.files)

    def blocks(self, kind: str) -> list[dict]:
        return [block for parsed in self.files.values() for block in parsed.get(kind, [])]

    @property
    def variables(self) -> dict[str, dict]:
        return {name: body for block in self.blocks("variable") for name, body in block.items()}

    @property
    def locals(self) -> dict:
        merged: dict = {}
        for block in self.blocks("locals"):
            duplicate = merged.keys() & block.keys()
            assert not duplicate, f"locals defined twice: {duplicate}"
            merged.update(block)
        return merged

    def resources(self, kind: str = "resource") -> dict[str, dict[str, dict]]:
        """{type: {name: body}} for `resource` or `data` blocks."""
        out: dict[str, dict[str, dict]] = {}
        for block in self.blocks(kind):
            for rtype, named in block.items():
                for name, body in named.items():
                    out.setdefault(rtype, {})[name] = body
        return out

    def resource(self, rtype: str, name: str) -> dict:
        return self.resources()[rtype][name]

    def dependency_cycle(self) -> list[str] | None:
        """A cycle among resources, data sources and locals (terraform refuses to plan one), or
        None. Like terraform's graph, a reference to one for_each instance depends on the whole
        resource."""
        graph = {f"local.{name}": _references(value) for name, value in self.locals.items()}
        for kind in ("resource", "data"):
            for rtype, named in self.resources(kind).items():
                for name, body in named.items():
                    prefix = "data." if kind == "data" else ""
                    graph[f"{prefix}{rtype}.{name}"] = _references(body)
        done: set[str] = set()

        def visit(node: str, path: list[str]) -> list[str] | None:
            if node in path:
                return path[path.index(node):] + [node]
            if node in done or node not in graph:
                return None
            for nxt in sorted(graph[node]):
                if cycle := visit(nxt, path + [node]):
                    return cycle
            done.add(node)
            return None

        return next((c for node in sorted(graph) if (c := visit(node, []))), None)

    def evaluator(self, **overrides) -> "Evaluator":
        return Evaluator(self, overrides)


class Evaluator:
    def __init__(self, module: Module, overrides: dict):
        self.module = module
        self.vars = {name: body.get("default") for name, body in module.variables.items()}
        unknown = overrides.keys() - self.vars.keys()
        assert not unknown, f"no such variables: {unknown}"
        self.vars.update(overrides)
        self._locals = module.locals
        self._resolving: set[str] = set()

    def value(self, node):
        """Evaluates a parsed HCL value (string with interpolations, list, object, literal)."""
        if isinstance(node, dict):
            return {k: self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if not isinstance(node, str):
            return node
        whole = _WHOLE.match(node)
        if whole and not _PART.search(whole.group(1)):
            return self.expr(whole.group(1))
        return _PART.sub(lambda m: _to_string(self.expr(m.group(1))), node)

    def local(self, name: str):
        if name not in self._locals:
            raise KeyError(f"local.{name} is not defined")
        if name in self._resolving:
            raise Unknown(f"local.{name} refers to itself")
        self._resolving.add(name)
        try:
            return self.value(self._locals[name])
        finally:
            self._resolving.discard(name)

    def expr(self, source: str):
        python = source.replace("&&", " and ").replace("||", " or ")
        python = re.sub(r"!(?!=)", " not ", python)
        try:
            tree = ast.parse(python.strip(), mode="eval")
        except SyntaxError as e:
            raise Unknown(f"unsupported expression {source!r}") from e
        return self._eval(tree.body, source)

    def _eval(self, node, source):
        match node:
            case ast.Constant(value=v):
                return v
            case ast.List(elts=items) | ast.Tuple(elts=items):
                return [self._eval(i, source) for i in items]
            case ast.Attribute(value=ast.Name(id="var"), attr=name):
                if name not in self.vars:
                    raise KeyError(f"var.{name} is not declared")
                return self.vars[name]
            case ast.Attribute(value=ast.Name(id="local"), attr=name):
                return self.local(name)
            case ast.Attribute(value=ast.Attribute(value=ast.Name(id="local")) as parent, attr=key):
                # local.x.key: walk the unevaluated object, so unknown siblings do not matter.
                raw = self._locals[parent.attr]
                if not isinstance(raw, dict) or key not in raw:
                    raise Unknown(f"{ast.unparse(node)} in {source!r}")
                return self.value(raw[key])
            case ast.Attribute(value=ast.Attribute(value=ast.Name(id=rtype), attr=name), attr=arg) \
                    if name in self.module.resources().get(rtype, {}):
                # A resource's own argument (its name, say) is known at plan time; what the
                # provider computes (an ARN, an id) is not.
                body = self.module.resource(rtype, name)
                if arg not in body:
                    raise Unknown(f"{ast.unparse(node)} is known only after apply, in {source!r}")
                return self.value(body[arg])
            case ast.UnaryOp(op=ast.USub(), operand=o):
                return -self._eval(o, source)
            case ast.UnaryOp(op=ast.Not(), operand=o):
                return not self._eval(o, source)
            case ast.BinOp(left=l, op=op, right=r):
                a, b = self._eval(l, source), self._eval(r, source)
                ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                       ast.Div: lambda: a / b, ast.Mod: lambda: a % b}
                if type(op) not in ops:
                    raise Unknown(f"operator in {source!r}")
                return ops[type(op)]()
            case ast.BoolOp(op=op, values=values):
                results = [self._eval(v, source) for v in values]
                return all(results) if isinstance(op, ast.And) else any(results)
            case ast.Compare(left=l, ops=[op], comparators=[r]):
                a, b = self._eval(l, source), self._eval(r, source)
                ops = {ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b,
                       ast.Eq: a == b, ast.NotEq: a != b}
                return ops[type(op)]
            case ast.Call(func=ast.Name(id=fn), args=args) if fn in _FUNCTIONS:
                return _FUNCTIONS[fn](*[self._eval(a, source) for a in args])
        raise Unknown(f"cannot evaluate {ast.unparse(node)!r} in {source!r}")


_ADDRESS = re.compile(r"\b(data\.aws_\w+\.\w+|aws_\w+\.\w+|local\.\w+)")


def _references(body) -> set[str]:
    """Addresses (aws_x.y, data.aws_x.y, local.z) a parsed block or value refers to."""
    return set(_ADDRESS.findall(json.dumps(body)))


def references(text: str, kind: str) -> set[str]:
    """Names used as `var.NAME` or `local.NAME` in Terraform source text (comments removed)."""
    code = re.sub(r"(?m)(^|\s)(#|//).*$", "", text)
    return set(re.findall(rf"\b{kind}\.([A-Za-z_][A-Za-z0-9_-]*)", code))


_EXPLICIT = SerializationOptions(strip_string_quotes=True, explicit_blocks=True, with_comments=False)


def declared_blocks(text: str) -> list[tuple[str, str, str, dict]]:
    """(kind, type, name, body) of every `resource`, `data` and `provider` block in Terraform
    source (a provider's name is its alias or ""), parsed so that a block (`x { }`, marked
    `__is_block__`) stays apart from an attribute (`x = { }`)."""
    parsed = hcl2.loads(text, serialization_options=_EXPLICIT)
    found = [(kind, rtype, name, body)
             for kind in ("resource", "data")
             for block in parsed.get(kind, [])
             for rtype, named in block.items() if rtype != "__is_block__"
             for name, body in named.items() if name != "__is_block__"]
    found += [("provider", ptype, body.get("alias", ""), body)
              for block in parsed.get("provider", [])
              for ptype, body in block.items() if ptype != "__is_block__"]
    return found
