"""Kubernetes ``Status`` failures: one exception type carrying the exact body and code the real server sends."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request failure rendered as a ``Status`` object by the HTTP layer."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: str, name: str, group: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        out["group"] = group
    return out


def _what(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str, *, plural: str = "", group: str = "", name: str = "") -> ApiError:
    return ApiError(403, "Forbidden", message, _details(plural, name, group) if plural else None)


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_what(plural, group)} "{name}" not found', _details(plural, name, group))


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})"
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{_what(plural, group)} "{name}" already exists', _details(plural, name, group)
    )


def conflict(plural: str, group: str, name: str, why: str = "") -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_what(plural, group)} "{name}": {why}',
        _details(plural, name, group),
    )


def apply_conflict(conflicts: list[tuple[str, str]]) -> ApiError:
    """``conflicts`` are (manager, field path such as ``.spec.replicas``) pairs."""
    lines = "\n".join(f'- conflict with "{manager}": {field}' for manager, field in conflicts)
    word = "conflict" if len(conflicts) == 1 else "conflicts"
    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{manager}"', "field": field}
        for manager, field in conflicts
    ]
    return ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} {word}: {lines}", {"causes": causes})


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unsupported_media(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted "
        f"media types include: {', '.join(accepted)}; got {content_type!r}",
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """``causes`` are (field, cause reason such as ``FieldValueRequired``, message) triples."""
    texts = [f"{field}: {message}" if field else message for field, _, message in causes]
    summary = texts[0] if len(texts) == 1 else f"[{', '.join(texts)}]"
    what = f"{kind}.{group}" if group else kind
    details = _details(kind, name, group)
    details["causes"] = [{"reason": reason, "message": message, "field": field} for field, reason, message in causes]
    return ApiError(422, "Invalid", f'{what} "{name}" is invalid: {summary}', details)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", message)
