"""Go text/template's executor: walks a parsed tree against data, with Go's variable scopes,
truth, range over slices, maps (sorted keys) and integers, break/continue, lazy and/or, and
errors worded as Go's `template: NAME:LINE:COL: executing "NAME" at <NODE>: ...`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from polybuild.errors import TemplateError
from polybuild.imagetools.gotemplate import nodes
from polybuild.imagetools.gotemplate.funcs import FUNCTIONS, CallError, Function, truth
from polybuild.imagetools.gotemplate.parse import Tree
from polybuild.imagetools.gotemplate.values import NO_VALUE, Nil, Struct, go_print, type_name

_MAX_DEPTH = 1000  # Go's maxExecDepth for nested {{template}} calls


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Executor:
    """Runs one tree; `execute` returns the text it writes."""

    def __init__(
        self, tree: Tree, data: Any, functions: Mapping[str, Function] = FUNCTIONS
    ) -> None:
        self.tree = tree
        self.data = data
        self.functions = functions
        self.variables: list[tuple[str, Any]] = [("$", data)]
        self.out: list[str] = []
        self.depth = 0

    def execute(self) -> str:
        self.walk_list(self.data, self.tree.root)
        return "".join(self.out)

    def error(self, node: Any, message: str) -> TemplateError:
        text, pos = self.tree.text, node.pos
        line_start = text.rfind("\n", 0, pos) + 1
        line = text.count("\n", 0, pos) + 1
        context = str(getattr(node, "source", ""))
        if len(context) > 20:
            context = context[:20] + "..."
        name = self.tree.name
        return TemplateError(
            f'template: {name}:{line}:{pos - line_start}: executing "{name}" at <{context}>: '
            f"{message}"
        )

    # walking

    def walk_list(self, dot: Any, items: tuple[Any, ...]) -> None:
        for item in items:
            self.walk(dot, item)

    def walk(self, dot: Any, node: Any) -> None:
        if isinstance(node, nodes.Text):
            self.out.append(node.text)
        elif isinstance(node, nodes.Action):
            value = self.pipeline(dot, node.pipeline)
            if not node.pipeline.declarations:
                self.out.append(_printable(value))
        elif isinstance(node, nodes.Branch):
            mark = len(self.variables)
            if node.kind == "range":
                self.range(dot, node)
            else:
                value = self.pipeline(dot, node.pipeline)
                if truth(value):
                    self.walk_list(value if node.kind == "with" else dot, node.body)
                elif node.otherwise is not None:
                    self.walk_list(dot, node.otherwise)
            del self.variables[mark:]
        elif isinstance(node, nodes.LoopControl):
            raise _Break() if node.kind == "break" else _Continue()
        elif isinstance(node, nodes.TemplateCall):
            self.template_call(dot, node)

    def template_call(self, dot: Any, node: nodes.TemplateCall) -> None:
        body = self.tree.defined.get(node.name)
        if body is None:
            raise self.error(
                node, f'no template "{node.name}" associated with template "{self.tree.name}"'
            )
        value = self.pipeline(dot, node.pipeline) if node.pipeline is not None else None
        if self.depth >= _MAX_DEPTH:
            raise self.error(node, f"exceeded maximum template depth ({_MAX_DEPTH})")
        saved = self.variables
        self.variables = [("$", value)]
        self.depth += 1
        try:
            self.walk_list(value, body)
        finally:
            self.depth -= 1
            self.variables = saved

    def range(self, dot: Any, node: nodes.Branch) -> None:
        value = self.pipeline(dot, node.pipeline, assign=False)
        names = node.pipeline.declarations
        items: list[tuple[Any, Any]]
        if isinstance(value, Mapping):
            items = [(key, value[key]) for key in sorted(value)]
        elif isinstance(value, list | tuple):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(names) > 1:
                raise self.error(node.pipeline, "can't use range over int with 2 variables")
            items = [(n, n) for n in range(value)]
        elif value is None or value is NO_VALUE or isinstance(value, Nil):
            items = []
        else:
            raise self.error(node.pipeline, f"range can't iterate over {go_print(value)}")
        if not items:
            if node.otherwise is not None:
                self.walk_list(dot, node.otherwise)
            return
        mark = len(self.variables)
        for key, element in items:
            if len(names) == 1:
                self.set_variable(names[0], element, declare=not node.pipeline.is_assign)
            elif len(names) == 2:
                self.set_variable(names[0], key, declare=not node.pipeline.is_assign)
                self.set_variable(names[1], element, declare=not node.pipeline.is_assign)
            try:
                self.walk_list(element, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.variables[mark:]

    def set_variable(self, name: str, value: Any, *, declare: bool) -> None:
        if declare:
            self.variables.append((name, value))
            return
        for n in range(len(self.variables) - 1, -1, -1):
            if self.variables[n][0] == name:
                self.variables[n] = (name, value)
                return

    def variable(self, node: Any, name: str) -> Any:
        for known, value in reversed(self.variables):
            if known == name:
                return value
        raise self.error(node, f"undefined variable: {name}")

    # pipelines and commands

    def pipeline(self, dot: Any, pipeline: nodes.Pipeline, *, assign: bool = True) -> Any:
        """The pipeline's value; its variables are set to it unless `assign` is false (range
        sets them per element)."""
        value: Any = _MISSING
        for command in pipeline.commands:
            value = self.command(dot, command, value)
        if assign:
            for name in pipeline.declarations:
                self.set_variable(name, value, declare=not pipeline.is_assign)
        return value

    def command(self, dot: Any, command: nodes.Command, final: Any) -> Any:
        first, args = command.args[0], command.args[1:]
        if isinstance(first, nodes.Identifier):
            return self.call(dot, first, command, args, final)
        if isinstance(first, nodes.Field):
            return self.field_chain(dot, first, dot, first.names, args, final)
        if isinstance(first, nodes.Variable):
            value = self.variable(first, first.names[0])
            if len(first.names) == 1:
                self.no_arguments(first, args, final)
                return value
            return self.field_chain(dot, first, value, first.names[1:], args, final)
        if isinstance(first, nodes.Chain):
            value = self.argument(dot, first.node)
            if not first.names:
                self.no_arguments(first, args, final)
                return value
            return self.field_chain(dot, first, value, first.names, args, final)
        self.no_arguments(first, args, final)
        return self.argument(dot, first)

    def no_arguments(self, node: Any, args: tuple[Any, ...], final: Any) -> None:
        if args or final is not _MISSING:
            raise self.error(node, f"can't give argument to non-function {node.source}")

    def argument(self, dot: Any, node: Any) -> Any:
        """An operand used as a value (a function argument or a chain's receiver)."""
        if isinstance(node, nodes.Literal):
            return node.value
        if isinstance(node, nodes.Dot):
            return dot
        if isinstance(node, nodes.Nil):
            return None
        if isinstance(node, nodes.Pipeline):
            return self.pipeline(dot, node)
        command = nodes.Command(node.pos, (node,), node.source)
        return self.command(dot, command, _MISSING)

    def field_chain(
        self,
        dot: Any,
        node: Any,
        receiver: Any,
        names: tuple[str, ...],
        args: tuple[Any, ...],
        final: Any,
    ) -> Any:
        for name in names[:-1]:
            receiver = self.field(node, receiver, name, has_args=False)
        has_args = bool(args) or final is not _MISSING
        return self.field(node, receiver, names[-1], has_args=has_args)

    def field(self, node: Any, receiver: Any, name: str, *, has_args: bool) -> Any:
        if receiver is NO_VALUE:
            return NO_VALUE
        if isinstance(receiver, Struct):
            found, value = receiver.lookup(name)
            if found:
                if has_args:
                    raise self.error(
                        node, f"{name} has arguments but cannot be invoked as function"
                    )
                return value
            if not name[:1].isupper():
                raise self.error(
                    node, f"{name} is an unexported field of struct type {type_name(receiver)}"
                )
        elif isinstance(receiver, Mapping):
            if has_args:
                raise self.error(node, f"{name} is not a method but has arguments")
            return receiver.get(name, NO_VALUE)
        elif receiver is None:
            raise self.error(node, f"nil pointer evaluating interface {{}}.{name}")
        raise self.error(node, f"can't evaluate field {name} in type {type_name(receiver)}")

    def call(
        self,
        dot: Any,
        ident: nodes.Identifier,
        command: nodes.Command,
        args: tuple[Any, ...],
        final: Any,
    ) -> Any:
        function = self.functions[ident.name]
        count = len(args) + (final is not _MISSING)
        if count < function.at_least or (function.at_most is not None and count > function.at_most):
            want = (
                f"at least {function.at_least}"
                if function.at_most is None
                else str(function.at_least)
            )
            raise self.error(
                ident, f"wrong number of args for {ident.name}: want {want} got {count}"
            )
        if ident.name in ("and", "or"):
            value: Any = None
            operands = [*args, *(() if final is _MISSING else (_Value(final),))]
            for operand in operands:
                value = (
                    operand.value if isinstance(operand, _Value) else self.argument(dot, operand)
                )
                if truth(value) == (ident.name == "or"):
                    return value
            return value
        values = [self.argument(dot, a) for a in args]
        if final is not _MISSING:
            values.append(final)
        try:
            return function.call(*values)
        except CallError as exc:
            raise self.error(command, f"error calling {ident.name}: {exc}") from None


class _Missing:
    """No value was piped into a command (Go's missingVal)."""


_MISSING: Any = _Missing()


class _Value:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _printable(value: Any) -> str:
    """What an action writes: pointers are followed (a *T prints as T), nil as <nil>."""
    if isinstance(value, Struct) and value.pointer:
        value = dataclasses.replace(value, pointer=False)
    return go_print(value)
