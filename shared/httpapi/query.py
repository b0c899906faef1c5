"""The collection query language of the O2 APIs: ``filter``, attribute selectors and paging.

``filter=(op,attr,value[,value…])[;(…)]`` — every term must hold (``;`` is AND). Operators:
``eq neq gt lt gte lte cont ncont in nin``; ``attr`` is a path with ``/`` for nested attributes
(``extensions/hostName``). A value containing ``,``, ``;``, ``(`` or ``)`` is written in single
quotes, a quote inside doubled (``'it''s'``). Values are compared as the attribute's type: numbers
as numbers, booleans as ``true``/``false``, everything else as strings. On a list attribute a
term holds when it holds for some element (and ``neq``/``ncont``/``nin`` when for none).

Selectors (as ETSI SOL013 §5.3): ``all_fields`` (everything), ``fields=a,b/c`` (those, plus the
object's id, which is mandatory), ``fields=…&exclude_default`` (the default view plus those),
``exclude_fields=a,b`` (everything but those), ``exclude_default`` or nothing (the default view:
without the collection's default-excluded attributes). Attributes are checked against the
collection's JSON Schema: an unknown one is a 400.

Paging: ``page_size`` items per page (keyset on the collection's id); the answer's
``Link: <…&nextpage_opaque_marker=…>; rel="next"`` names the next page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from yarl import URL

from shared.httpapi.problems import bad_request

Op = Literal["eq", "neq", "gt", "lt", "gte", "lte", "cont", "ncont", "in", "nin"]
OPS: tuple[Op, ...] = ("eq", "neq", "gt", "lt", "gte", "lte", "cont", "ncont", "in", "nin")
_NEGATIVE = {"neq", "ncont", "nin"}
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_FILTER_LENGTH = 4096
Schema = Mapping[str, Any]


# ── attribute paths against a JSON Schema ────────────────────────────────────────────────


def _subschema(schema: Schema, part: str) -> Schema | None:
    """The schema of ``part`` inside ``schema``; ``{}`` (anything) under free-form objects."""
    if "anyOf" in schema or "oneOf" in schema:
        for option in schema.get("anyOf", schema.get("oneOf", [])):
            found = _subschema(option, part)
            if found is not None:
                return found
        return None
    if schema.get("type") == "array" or "items" in schema:
        return _subschema(schema.get("items", {}), part)
    props = schema.get("properties")
    if isinstance(props, Mapping) and part in props:
        return props[part]  # type: ignore[no-any-return]
    extra = schema.get("additionalProperties", props is None)
    if extra is False:
        return None
    return extra if isinstance(extra, Mapping) else {}


def check_attribute(schema: Schema, path: str, param: str) -> tuple[str, ...]:
    parts = tuple(path.split("/"))
    if not path or any(not p for p in parts):
        raise bad_request(f"{param}: {path!r} is not an attribute path (names joined by '/')")
    node: Schema | None = schema
    for part in parts:
        node = _subschema(node, part) if node is not None else None
        if node is None:
            raise bad_request(f"{param}: unknown attribute {path!r}")
    return parts


def _values_at(obj: Any, parts: Sequence[str]) -> list[Any]:
    """Every value at ``parts`` (lists along the way fan out); empty when absent."""
    current = [obj]
    for part in parts:
        nxt: list[Any] = []
        for item in current:
            items = item if isinstance(item, list) else [item]
            for one in items:
                if isinstance(one, Mapping) and part in one:
                    nxt.append(one[part])
        current = nxt
    out: list[Any] = []
    for value in current:
        out.extend(value if isinstance(value, list) else [value])
    return out


# ── filter ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Term:
    op: Op
    path: tuple[str, ...]
    values: tuple[str, ...]

    def holds(self, obj: Any) -> bool:
        found = _values_at(obj, self.path)
        positive = any(self._match(v) for v in found)
        return not positive if self.op in _NEGATIVE else positive

    def _match(self, actual: Any) -> bool:
        op = self.op
        if op in ("cont", "ncont"):
            return isinstance(actual, str) and any(v in actual for v in self.values)
        wanted = [_coerce(v, actual) for v in self.values]
        if op in ("eq", "neq", "in", "nin"):
            return any(w is not _NO and w == actual for w in wanted)
        w = wanted[0]
        if w is _NO or actual is None or isinstance(actual, (dict, list)):
            return False
        try:
            match op:
                case "gt":
                    return bool(actual > w)
                case "lt":
                    return bool(actual < w)
                case "gte":
                    return bool(actual >= w)
                case "lte":
                    return bool(actual <= w)
        except TypeError:
            return False
        return False


_NO = object()


def _coerce(text: str, like: Any) -> Any:
    """``text`` as the type of ``like`` (the attribute's value), or ``_NO`` when it cannot be."""
    if isinstance(like, bool):
        return {"true": True, "false": False}.get(text.lower(), _NO)
    if isinstance(like, (int, float)):
        try:
            return int(text) if isinstance(like, int) and text.lstrip("-").isdigit() else float(text)
        except ValueError:
            return _NO
    if like is None:
        return None if text == "null" else _NO
    return text


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside single quotes and parentheses."""
    out: list[str] = []
    buf: list[str] = []
    depth, quoted = 0, False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == sep and not quoted and depth == 0:
            out.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    if quoted or depth != 0:
        raise bad_request("filter: unbalanced quotes or parentheses")
    out.append("".join(buf))
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if "'" in value:
        raise bad_request(f"filter: stray quote in value {value!r}")
    return value


def parse_filter(text: str, schema: Schema) -> list[Term]:
    if len(text) > MAX_FILTER_LENGTH:
        raise bad_request(f"filter: longer than {MAX_FILTER_LENGTH} characters")
    terms = []
    for raw in _split(text.strip(), ";"):
        item = raw.strip()
        if not (item.startswith("(") and item.endswith(")")):
            raise bad_request(f"filter: {item!r} is not a term '(op,attribute,value[,value…])'")
        parts = [p.strip() for p in _split(item[1:-1], ",")]
        if len(parts) < 3:
            raise bad_request(f"filter: {item!r} needs an operator, an attribute and at least one value")
        op, attr, values = parts[0], parts[1], tuple(_unquote(v) for v in parts[2:])
        if op not in OPS:
            raise bad_request(f"filter: unknown operator {op!r} (known: {', '.join(OPS)})")
        if len(values) > 1 and op not in ("in", "nin", "cont", "ncont", "eq", "neq"):
            raise bad_request(f"filter: {op} takes exactly one value")
        terms.append(Term(op, check_attribute(schema, attr, "filter"), values))
    return terms


# ── selectors ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Selector:
    mode: Literal["default", "all", "only", "without"] = "default"
    paths: tuple[tuple[str, ...], ...] = ()
    #: With ``fields``: ``exclude_default`` given too (the default view plus the named attributes).
    with_default: bool = False

    def apply(
        self, obj: dict[str, Any], default_excluded: Iterable[tuple[str, ...]], identity: Iterable[tuple[str, ...]] = ()
    ) -> dict[str, Any]:
        """``obj`` as selected; ``identity`` (the object's id) is mandatory and always kept."""
        excluded = list(default_excluded)
        match self.mode:
            case "all":
                return obj
            case "only" if self.with_default:
                return _without(obj, [p for p in excluded if p not in self.paths])
            case "only":
                out: dict[str, Any] = {}
                for path in (*identity, *self.paths):
                    _copy_path(obj, out, path)
                return out
            case "without":
                keep = set(identity)
                return _without(obj, [p for p in self.paths if p not in keep])
            case "default":
                return _without(obj, excluded)


def _copy_path(src: Mapping[str, Any], dst: dict[str, Any], path: tuple[str, ...]) -> None:
    head, rest = path[0], path[1:]
    if head not in src:
        return
    if not rest:
        dst[head] = src[head]
    elif isinstance(src[head], Mapping):
        _copy_path(src[head], dst.setdefault(head, {}), rest)


def _without(obj: dict[str, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    if not paths:
        return obj
    out = dict(obj)
    for path in paths:
        node: Any = out
        for i, part in enumerate(path):
            if not isinstance(node, dict) or part not in node:
                break
            if i == len(path) - 1:
                del node[part]
            else:
                node[part] = dict(node[part]) if isinstance(node[part], Mapping) else node[part]
                node = node[part]
    return out


def parse_selector(params: Mapping[str, str], schema: Schema) -> Selector:
    given = [p for p in ("all_fields", "fields", "exclude_fields", "exclude_default") if p in params]
    if "all_fields" in given and len(given) > 1:
        raise bad_request(f"all_fields cannot be combined with {', '.join(p for p in given if p != 'all_fields')}")
    if "fields" in given and "exclude_fields" in given:
        raise bad_request("fields and exclude_fields cannot be combined")
    if "all_fields" in given:
        return Selector("all")

    def paths(param: str) -> tuple[tuple[str, ...], ...]:
        names = [n.strip() for n in params[param].split(",") if n.strip()]
        if not names:
            raise bad_request(f"{param}: name at least one attribute")
        return tuple(check_attribute(schema, n, param) for n in names)

    if "fields" in given:
        return Selector("only", paths("fields"), with_default="exclude_default" in given)
    if "exclude_fields" in given:
        if "exclude_default" in given:
            raise bad_request("exclude_fields and exclude_default cannot be combined")
        return Selector("without", paths("exclude_fields"))
    return Selector("default")


# ── paging ───────────────────────────────────────────────────────────────────────────────


def _marker(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _after(marker: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)))
    except (binascii.Error, ValueError):
        raise bad_request("nextpage_opaque_marker: not a marker this server issued") from None
    if not isinstance(data, dict) or not isinstance(data.get("after"), str):
        raise bad_request("nextpage_opaque_marker: not a marker this server issued")
    return str(data["after"])


def _page_size(params: Mapping[str, str]) -> int:
    raw = params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise bad_request(f"page_size: an integer from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


# ── one call for a collection GET ─────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...] = ()
    selector: Selector = field(default_factory=Selector)
    page_size: int = DEFAULT_PAGE_SIZE
    after: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], schema: Schema) -> Query:
        terms = tuple(parse_filter(params["filter"], schema)) if "filter" in params else ()
        after = _after(params["nextpage_opaque_marker"]) if "nextpage_opaque_marker" in params else None
        return cls(terms, parse_selector(params, schema), _page_size(params), after)

    def matches(self, obj: Any) -> bool:
        return all(t.holds(obj) for t in self.terms)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_marker: str | None

    def link(self, url: URL) -> str | None:
        if self.next_marker is None:
            return None
        return f'<{url.update_query(nextpage_opaque_marker=self.next_marker)}>; rel="next"'


def select(
    objects: Iterable[dict[str, Any]],
    query: Query,
    key: Callable[[dict[str, Any]], str],
    default_excluded: Iterable[tuple[str, ...]] = (),
    identity: Iterable[tuple[str, ...]] = (),
) -> Page:
    """Filter, order by ``key``, cut one page after the marker, then apply the selector."""
    hits = sorted((o for o in objects if query.matches(o)), key=key)
    if query.after is not None:
        hits = [o for o in hits if key(o) > query.after]
    page, rest = hits[: query.page_size], hits[query.page_size :]
    excluded = tuple(default_excluded)
    marker = _marker(key(page[-1])) if rest and page else None
    ids = tuple(identity)
    return Page([query.selector.apply(o, excluded, ids) for o in page], marker)


def collection_response(
    request: web.Request,
    objects: Iterable[dict[str, Any]],
    schema: Schema,
    key: Callable[[dict[str, Any]], str],
    default_excluded: Iterable[tuple[str, ...]] = (),
    identity: Iterable[str] = (),
) -> web.Response:
    """A collection GET: the query parsed from the URL, one page of JSON, the next page in ``Link``.

    ``identity`` names the objects' id attribute(s) (``a/b`` for nested): ``fields`` always keeps them.
    """
    query = Query.parse(request.rel_url.query, schema)
    page = select(objects, query, key, default_excluded, [tuple(i.split("/")) for i in identity])
    link = page.link(request.url)
    return web.json_response(page.items, headers={"Link": link} if link else None)


def item_response(
    request: web.Request,
    obj: dict[str, Any],
    schema: Schema,
    default_excluded: Iterable[tuple[str, ...]] = (),
    identity: Iterable[str] = (),
) -> web.Response:
    """One object, with the same attribute selectors as a collection."""
    selector = parse_selector(request.rel_url.query, schema)
    return web.json_response(selector.apply(obj, tuple(default_excluded), [tuple(i.split("/")) for i in identity]))
