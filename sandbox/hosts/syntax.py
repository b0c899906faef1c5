"""The syntax tree of the sandbox command language (a small POSIX-shell subset, see docs/sandbox-hosts.md).

Words keep their quoting (``Lit(quoted=...)``, ``Param``) so that expansion can honour it: ``'${Status}'``
stays literal, ``"$HOME"`` expands without field splitting. ``parse()`` (in ``parser.py``) builds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ShellSyntaxError(Exception):
    """The command line cannot be run; ``str()`` is the stderr message (without the ``bash: `` prefix)."""


@dataclass(frozen=True)
class Lit:
    text: str
    quoted: bool


@dataclass(frozen=True)
class Param:
    name: str
    op: str = ""
    arg: Word | None = None
    quoted: bool = False


Part = Lit | Param


@dataclass(frozen=True)
class Word:
    parts: tuple[Part, ...]

    def literal(self) -> str | None:
        """The text when the word has no expansions."""
        if all(isinstance(p, Lit) for p in self.parts):
            return "".join(p.text for p in self.parts if isinstance(p, Lit))
        return None

    def bare(self) -> str | None:
        """The text when the word is entirely unquoted literal (how reserved words are recognized)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Lit) and not self.parts[0].quoted:
            return self.parts[0].text
        return None


@dataclass
class Heredoc:
    delimiter: str
    expand: bool
    strip_tabs: bool
    body: str = ""
    body_word: Word | None = None


@dataclass
class Redir:
    fd: int
    op: str
    target: Word | None = None
    heredoc: Heredoc | None = None


@dataclass
class Simple:
    assigns: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Pipeline:
    commands: list[Command]
    negate: bool = False


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)


@dataclass
class CommandList:
    items: list[AndOr] = field(default_factory=list)


@dataclass
class If:
    branches: list[tuple[CommandList, CommandList]]
    orelse: CommandList | None = None
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Group:
    body: CommandList
    subshell: bool
    redirs: list[Redir] = field(default_factory=list)


Command = Simple | If | Group
