"""Go text/template's parser: tokens into a tree of text, actions, if/else if/with/range/end,
variables in scope, `define`/`template`/`block`; errors worded as Go's `template: NAME:LINE:`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from polybuild.errors import TemplateError
from polybuild.imagetools.gotemplate import nodes
from polybuild.imagetools.gotemplate.lex import Lexer, Token, parse_error


@dataclass(slots=True)
class Tree:
    """The parsed template: its root list and the templates it defines by name."""

    name: str
    text: str
    root: tuple[Any, ...] = ()
    defined: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def parse(name: str, text: str, functions: Collection[str]) -> Tree:
    """Parse `text`; `functions` are the names a template may call."""
    parser = _Parser(name, text, Lexer(name, text).run(), functions)
    tree = Tree(name, text, defined=parser.defined)
    tree.root = parser.list_until(("eof",))[0]
    return tree


def _describe(token: Token) -> str:
    if token.kind == "eof":
        return "EOF"
    if token.kind == "right":
        return '"}}"'
    if token.kind in ("string", "number"):
        return token.source
    if token.kind == "keyword":
        return f"<{token.value}>"
    return f'"{token.source or token.value}"'


class _Parser:
    def __init__(
        self, name: str, text: str, tokens: list[Token], functions: Collection[str]
    ) -> None:
        self.name = name
        self.text = text
        self.tokens = tokens
        self.index = 0
        self.functions = functions
        self.variables: list[str] = ["$"]
        self.range_depth = 0
        self.defined: dict[str, tuple[Any, ...]] = {}

    def error(self, token: Token, message: str) -> TemplateError:
        return parse_error(self.name, self.text, token.pos, message)

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, kind: str, context: str) -> Token:
        token = self.next()
        if token.kind != kind:
            raise self.error(token, f"unexpected {_describe(token)} in {context}")
        return token

    # lists and control structures

    def list_until(self, stops: tuple[str, ...]) -> tuple[tuple[Any, ...], Token]:
        """Nodes up to a `{{keyword}}` in `stops` (or EOF); returns them and that keyword."""
        items: list[Any] = []
        while True:
            token = self.next()
            if token.kind == "eof":
                if "eof" in stops:
                    return tuple(items), token
                raise self.error(token, "unexpected EOF")
            if token.kind == "text":
                items.append(nodes.Text(token.pos, token.value))
                continue
            keyword = self.peek()
            if keyword.kind == "keyword" and keyword.value in ("end", "else"):
                if keyword.value not in stops:
                    raise self.error(keyword, f"unexpected {{{{{keyword.value}}}}}")
                self.index += 1
                return tuple(items), keyword
            node = self.action(token)
            if node is not None:
                items.append(node)

    def action(self, left: Token) -> Any:
        token = self.peek()
        if token.kind == "keyword":
            self.index += 1
            word = token.value
            if word in ("if", "with", "range"):
                return self.branch(word, token)
            if word in ("break", "continue"):
                if not self.range_depth:
                    raise self.error(token, f"{{{{{word}}}}} outside {{{{range}}}}")
                self.expect("right", word)
                return nodes.LoopControl(word, token.pos)
            if word == "template":
                return self.template_call(token)
            if word in ("define", "block"):
                return self.define(token, word)
        pipeline = self.pipeline("command", allow_declare=True)
        return nodes.Action(left.pos, pipeline)

    def branch(self, kind: str, keyword: Token) -> nodes.Branch:
        depth = len(self.variables)
        pipeline = self.pipeline(kind, allow_declare=True, is_range=kind == "range")
        if kind == "range":
            self.range_depth += 1
        body, stop = self.list_until(("end", "else"))
        if kind == "range":
            self.range_depth -= 1
        otherwise: tuple[Any, ...] | None = None
        if stop.value == "else":
            follow = self.peek()
            if follow.kind == "keyword" and follow.value in ("if", "with") and kind != "range":
                if follow.value != kind:
                    raise self.error(follow, f"unexpected <{follow.value}> after else")
                # `{{else if x}}` is `{{else}}{{if x}}...{{end}}{{end}}` with one `{{end}}`
                self.index += 1
                otherwise = (self.branch(kind, follow),)
            else:
                self.expect("right", "else")
                otherwise, _ = self.list_until(("end",))
                self.expect("right", "end")
        else:
            self.expect("right", "end")
        del self.variables[depth:]
        return nodes.Branch(kind, keyword.pos, pipeline, body, otherwise)

    def template_call(self, keyword: Token) -> nodes.TemplateCall:
        name = self.next()
        if name.kind != "string":
            raise self.error(name, f"unexpected {_describe(name)} in template clause")
        pipeline = None
        if self.peek().kind != "right":
            pipeline = self.pipeline("template", allow_declare=False)
        else:
            self.index += 1
        return nodes.TemplateCall(keyword.pos, name.value, pipeline)

    def define(self, keyword: Token, word: str) -> Any:
        name = self.next()
        if name.kind != "string":
            raise self.error(name, f"unexpected {_describe(name)} in {word} clause")
        pipeline = None
        if word == "block":
            pipeline = self.pipeline("block", allow_declare=False)
        else:
            self.expect("right", "define clause")
        saved, self.variables = self.variables, ["$"]
        body, _ = self.list_until(("end",))
        self.expect("right", "end")
        self.variables = saved
        self.defined[name.value] = body
        return nodes.TemplateCall(keyword.pos, name.value, pipeline) if word == "block" else None

    # pipelines, commands and operands

    def pipeline(
        self, context: str, *, allow_declare: bool, is_range: bool = False
    ) -> nodes.Pipeline:
        start = self.peek()
        declarations: list[str] = []
        is_assign = False
        if allow_declare and start.kind == "variable":
            after = self.peek(1)
            if after.kind in ("declare", "assign") or (is_range and after.kind == "comma"):
                declarations.append(self.next().value)
                if after.kind == "comma":
                    self.index += 1
                    second = self.expect("variable", "range")
                    declarations.append(second.value)
                    after = self.peek()
                    if after.kind not in ("declare", "assign"):
                        raise self.error(after, f"unexpected {_describe(after)} in range")
                if after.kind == "assign":
                    is_assign = True
                    for name in declarations:
                        if name not in self.variables:
                            raise self.error(start, f'undefined variable "{name}"')
                self.index += 1
        if not is_assign:
            self.variables.extend(declarations)
        commands: list[nodes.Command] = []
        end_kind = ")" if context == "parenthesized pipeline" else "right"
        while True:
            token = self.peek()
            if token.kind == end_kind:
                self.index += 1
                break
            if token.kind in ("right", ")", "eof"):
                raise self.error(token, f"unexpected {_describe(token)} in {context}")
            commands.append(self.command(context))
            if self.peek().kind == "pipe":
                pipe = self.next()
                if self.peek().kind in ("right", ")"):
                    raise self.error(pipe, "missing command after pipe")
        if not commands:
            raise self.error(start, f"missing value for {context}")
        for n, command in enumerate(commands[1:], 1):
            if isinstance(command.args[0], nodes.Literal | nodes.Nil | nodes.Dot):
                raise self.error(start, f"non executable command in pipeline stage {n + 1}")
        source = " | ".join(c.source for c in commands)
        if declarations:
            source = f"{', '.join(declarations)} {'=' if is_assign else ':='} {source}"
        return nodes.Pipeline(start.pos, tuple(declarations), is_assign, tuple(commands), source)

    def command(self, context: str) -> nodes.Command:
        first = self.peek()
        args: list[Any] = []
        while True:
            args.append(self.operand())
            token = self.peek()
            if token.kind in ("right", ")", "pipe"):
                break
            if not token.spaced:
                raise self.error(token, f"unexpected {_describe(token)} in operand")
        if isinstance(args[0], nodes.Nil):
            raise self.error(first, "nil is not a command")
        return nodes.Command(first.pos, tuple(args), " ".join(_source(a) for a in args))

    def operand(self) -> Any:
        node = self.term()
        names: list[str] = []
        while self.peek().kind == "field" and not self.peek().spaced:
            names.append(self.next().value)
        if not names:
            return node
        if isinstance(node, nodes.Field | nodes.Variable):
            kind = type(node)
            chained = (*node.names, *names)
            source = node.source + "".join("." + n for n in names)
            return kind(node.pos, chained, source)
        if isinstance(node, nodes.Literal | nodes.Nil | nodes.Dot):
            raise self.error(self.peek(), f"unexpected . after term {_source(node)!r}")
        source = _source(node) + "".join("." + n for n in names)
        return nodes.Chain(node.pos, node, tuple(names), source)

    def term(self) -> Any:
        token = self.next()
        kind = token.kind
        if kind == "ident":
            if token.value not in self.functions:
                raise self.error(token, f'function "{token.value}" not defined')
            return nodes.Identifier(token.pos, token.value, token.value)
        if kind == "dot":
            return nodes.Dot(token.pos)
        if kind == "nil":
            return nodes.Nil(token.pos)
        if kind == "variable":
            if token.value not in self.variables:
                raise self.error(token, f'undefined variable "{token.value}"')
            return nodes.Variable(token.pos, (token.value,), token.value)
        if kind == "field":
            return nodes.Field(token.pos, (token.value,), token.source)
        if kind in ("bool", "number", "string"):
            return nodes.Literal(token.pos, token.value, token.source)
        if kind == "(":
            pipeline = self.pipeline("parenthesized pipeline", allow_declare=False)
            return nodes.Chain(token.pos, pipeline, (), f"({pipeline.source})")
        raise self.error(token, f"unexpected {_describe(token)} in operand")


def _source(node: Any) -> str:
    return str(getattr(node, "source", ""))
