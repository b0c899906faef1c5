"""ProblemDetails (RFC 9457) errors: every error answer is ``application/problem+json``.

Handlers raise ``HttpProblem``; ``problem_middleware`` turns it, aiohttp's own 404/405 (with
``Allow``) and anything unexpected (a 500 that reveals nothing internal) into the same body
``{type, title, status, detail, instance}``, plus extension members such as ``problems``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web

from shared.safe_json import JsonRefused, Problem, loads

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpProblem(Exception):
    """An error answer: status, a human ``detail``, optional extension members and headers."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


def bad_request(detail: str, **extra: Any) -> HttpProblem:
    return HttpProblem(400, detail, extra=extra)


def not_found(detail: str) -> HttpProblem:
    return HttpProblem(404, detail)


def conflict(detail: str, **extra: Any) -> HttpProblem:
    return HttpProblem(409, detail, extra=extra)


def problem_response(
    request: web.Request,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.rel_url.path,
    }
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_JSON, headers=dict(headers or {}))


def from_problem(request: web.Request, exc: HttpProblem) -> web.Response:
    return problem_response(
        request, exc.status, exc.detail, title=exc.title, type_=exc.type, extra=exc.extra, headers=exc.headers
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpProblem as exc:
        return from_problem(request, exc)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return problem_response(
            request,
            405,
            f"{request.method} is not supported on {request.rel_url.path}; allowed: {allowed}",
            headers={"Allow": allowed},
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate", "retry-after")}
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 404:
            detail = f"no resource at {request.rel_url.path}"
        return problem_response(request, exc.status, detail, headers=headers)
    except Exception:
        # The traceback goes to the log only: an error body never shows internals.
        log.exception("request_failed", method=request.method, path=request.rel_url.path)
        return problem_response(request, 500, "the request could not be completed")


async def json_body(request: web.Request, *, max_bytes: int = 1 << 20) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 problem saying why not."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise HttpProblem(413, f"the body exceeds {max_bytes} bytes")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise HttpProblem(413, f"the body exceeds {max_bytes} bytes")
    # Hostile JSON (duplicate keys, NaN, absurd nesting, bad UTF-8) is refused with located problems.
    try:
        body, problems = loads(raw, max_bytes=max_bytes, what="body")
    except JsonRefused as exc:
        problems = list(exc.problems)
        body = None
    if problems:
        raise bad_request(f"the body is not acceptable JSON: {problems[0]}", problems=problem_list(problems))
    if not isinstance(body, dict):
        raise bad_request(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def problem_list(problems: list[Problem]) -> list[dict[str, str]]:
    """Problems as the ``problems`` member of a 400 body: ``[{path, rule, message}]``."""
    return [{"path": p.path, "rule": p.rule, "message": p.message} for p in problems]
