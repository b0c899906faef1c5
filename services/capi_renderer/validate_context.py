"""The shared ground of render validation: the issue type, the schema validator it needs, the check context.

Each group of checks (``validate``, ``validate_control_plane``) takes a ``CheckContext`` holding the
render, the spec and options it came from, and the issues found so far.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from services.capi_renderer.domain import VERSIONED, ClusterNames, RenderOptions, TemplateChoice, describe, get
from shared.models import ClusterSpec


class FieldErrorLike(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def message(self) -> str: ...


class SchemaValidator(Protocol):
    """What is needed of ``shared.crd_schema.CrdSchemas``."""

    def validate(self, obj: Mapping[str, Any], *, strict: bool = True) -> Sequence[FieldErrorLike]: ...


@dataclass(frozen=True)
class RenderIssue:
    """One reason a render must not be applied: which object, where in it, which rule, why."""

    object: str
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.object} {self.path}" if self.path else self.object
        return f"{where}: {self.message} [{self.rule}]"


@dataclass
class CheckContext:
    """A render under validation and the issues found in it so far."""

    objects: Sequence[Mapping[str, Any]]
    spec: ClusterSpec
    options: RenderOptions
    names: ClusterNames
    issues: list[RenderIssue]
    #: The version the workers are rendered at (the spec's, except in an upgrade's control-plane step).
    workers_version: str = ""
    #: Which roles keep a live legacy (unversioned) machine template.
    templates: TemplateChoice = VERSIONED

    @property
    def cp_template(self) -> str:
        return self.templates.control_plane(self.names, self.spec.k8s_version)[0]

    @property
    def workers_template(self) -> str:
        return self.templates.workers(self.names, self.workers_version or self.spec.k8s_version)[0]

    def find(self, kind: str, name: str) -> Mapping[str, Any] | None:
        for obj in self.objects:
            if obj.get("kind") == kind and get(obj, "metadata.name") == name:
                return obj
        return None

    def add(self, obj: Mapping[str, Any] | str, path: str, rule: str, message: str) -> None:
        label = obj if isinstance(obj, str) else describe(obj)
        self.issues.append(RenderIssue(label, path, rule, message))
