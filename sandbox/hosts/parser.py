"""Recursive-descent parser of the sandbox command language: lists, and-or chains, pipelines, if, groups."""

from __future__ import annotations

import re

from .lexer import Lexer, Tok
from .syntax import AndOr, Command, CommandList, Group, If, Lit, Part, Pipeline, Redir, ShellSyntaxError, Simple, Word

_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_RESERVED_UNSUPPORTED = {"for", "while", "until", "case", "do", "done", "esac", "function", "select", "[["}


class _Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at_word(self, *values: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.word is not None and tok.word.bare() in values

    def skip_newlines(self) -> None:
        while self.peek().kind == "newline":
            self.take()

    def unexpected(self) -> ShellSyntaxError:
        tok = self.peek()
        shown = {"eof": "end of file", "newline": "newline"}.get(tok.kind, tok.value)
        return ShellSyntaxError(f"syntax error near unexpected token `{shown}'")

    def parse_list(self, stops: tuple[str, ...] = ()) -> CommandList:
        items: list[AndOr] = []
        self.skip_newlines()
        while True:
            tok = self.peek()
            if tok.kind == "eof" or self.at_word(*stops) or (tok.kind == "op" and tok.value == ")"):
                break
            items.append(self.parse_and_or())
            tok = self.peek()
            if tok.kind == "op" and tok.value == "&":
                raise ShellSyntaxError("background jobs (`&') are not supported by the sandbox host shell")
            if (tok.kind == "op" and tok.value == ";") or tok.kind == "newline":
                self.take()
                self.skip_newlines()
                continue
            break
        return CommandList(items)

    def parse_and_or(self) -> AndOr:
        node = AndOr(self.parse_pipeline())
        while self.peek().kind == "op" and self.peek().value in ("&&", "||"):
            op = self.take().value
            self.skip_newlines()
            node.rest.append((op, self.parse_pipeline()))
        return node

    def parse_pipeline(self) -> Pipeline:
        negate = False
        if self.at_word("!"):
            self.take()
            negate = True
        cmds = [self.parse_command()]
        while self.peek().kind == "op" and self.peek().value == "|":
            self.take()
            self.skip_newlines()
            cmds.append(self.parse_command())
        return Pipeline(cmds, negate)

    def parse_command(self) -> Command:
        tok = self.peek()
        if tok.kind == "word" and tok.word is not None:
            bare = tok.word.bare()
            if bare == "if":
                return self.parse_if()
            if bare == "{":
                self.take()
                body = self.parse_list(("}",))
                self.expect_word("}")
                return Group(body, subshell=False, redirs=self.parse_redirs())
            if bare in _RESERVED_UNSUPPORTED:
                raise ShellSyntaxError(f"`{bare}' is not supported by the sandbox host shell")
        if tok.kind == "op" and tok.value == "(":
            self.take()
            body = self.parse_list()
            if not (self.peek().kind == "op" and self.peek().value == ")"):
                raise self.unexpected()
            self.take()
            return Group(body, subshell=True, redirs=self.parse_redirs())
        return self.parse_simple()

    def expect_word(self, value: str) -> None:
        if not self.at_word(value):
            raise self.unexpected()
        self.take()

    def parse_if(self) -> If:
        self.take()
        branches: list[tuple[CommandList, CommandList]] = []
        orelse: CommandList | None = None
        while True:
            cond = self.parse_list(("then",))
            self.expect_word("then")
            body = self.parse_list(("elif", "else", "fi"))
            branches.append((cond, body))
            if self.at_word("elif"):
                self.take()
                continue
            if self.at_word("else"):
                self.take()
                orelse = self.parse_list(("fi",))
            self.expect_word("fi")
            return If(branches, orelse, self.parse_redirs())

    def parse_redirs(self) -> list[Redir]:
        redirs: list[Redir] = []
        while (redir := self.maybe_redir()) is not None:
            redirs.append(redir)
        return redirs

    def maybe_redir(self) -> Redir | None:
        tok = self.peek()
        fd: int | None = None
        if tok.kind == "io":
            fd = int(self.take().value)
            tok = self.peek()
        if tok.kind != "op" or tok.value not in ("<", ">", ">>", ">|", "&>", ">&", "<&", "<<", "<<-"):
            if fd is not None:
                raise self.unexpected()
            return None
        op = self.take().value
        if op in ("<<", "<<-"):
            return Redir(0 if fd is None else fd, "<<", heredoc=tok.heredoc)
        target = self.take()
        if target.kind != "word" or target.word is None:
            self.i -= 1
            raise self.unexpected()
        default_fd = 0 if op in ("<", "<&") else 1
        return Redir(default_fd if fd is None else fd, ">" if op == ">|" else op, target=target.word)

    def parse_simple(self) -> Simple:
        node = Simple()
        while True:
            redir = self.maybe_redir()
            if redir is not None:
                node.redirs.append(redir)
                continue
            tok = self.peek()
            if tok.kind != "word" or tok.word is None:
                break
            if not node.words and (assign := _assignment(tok.word)) is not None:
                node.assigns.append(assign)
            else:
                node.words.append(tok.word)
            self.take()
        if not node.words and not node.assigns and not node.redirs:
            raise self.unexpected()
        return node


def _assignment(word: Word) -> tuple[str, Word] | None:
    first = word.parts[0] if word.parts else None
    if not isinstance(first, Lit) or first.quoted:
        return None
    m = _ASSIGN.match(first.text)
    if not m:
        return None
    rest: list[Part] = []
    if first.text[m.end() :]:
        rest.append(Lit(first.text[m.end() :], False))
    rest.extend(word.parts[1:])
    return m.group(1), Word(tuple(rest))


def parse(src: str) -> CommandList:
    """Parse a whole command line or script; raises ShellSyntaxError."""
    parser = _Parser(Lexer(src).tokens())
    result = parser.parse_list()
    if parser.peek().kind != "eof":
        raise parser.unexpected()
    return result
