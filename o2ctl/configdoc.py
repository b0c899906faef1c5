"""The configuration reference (``docs/configuration.md``), generated from the settings models.

Every field of ``ServiceSettings`` and of each service's settings class becomes a row: its
environment variable, type, default and the ``#:`` comment written above it in the source. A test
compares the file with this output, so the reference cannot drift from the code.
Run ``python -m o2ctl.configdoc > docs/configuration.md`` after changing a setting.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from services.capi_renderer.settings import CapiRendererSettings
from services.focom.settings import FocomSettings
from services.focom_api.settings import FocomApiSettings
from services.hostprep.settings import HostprepSettings
from services.o2ims.settings import O2imsSettings
from services.o2ims_api.settings import O2imsApiSettings
from services.status_watcher.settings import StatusWatcherSettings
from shared.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[1]
SERVICES: list[tuple[str, type[ServiceSettings]]] = [
    ("focom", FocomSettings),
    ("o2ims", O2imsSettings),
    ("hostprep", HostprepSettings),
    ("capi_renderer", CapiRendererSettings),
    ("status_watcher", StatusWatcherSettings),
    ("o2ims_api", O2imsApiSettings),
    ("focom_api", FocomApiSettings),
]


def _comments(cls: type) -> dict[str, str]:
    """``#:`` comment lines directly above each annotated field in the class body."""
    lines = inspect.getsource(cls).splitlines()
    tree = ast.parse("\n".join(lines).strip() if lines[0].startswith((" ", "\t")) else "\n".join(lines))
    out: dict[str, str] = {}
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            i = node.lineno - 2
            text: list[str] = []
            while i >= 0 and lines[i].strip().startswith("#:"):
                text.insert(0, lines[i].strip()[2:].strip())
                i -= 1
            out[node.target.id] = " ".join(text)
    return out


def _env_name(name: str, info: FieldInfo, prefix: str) -> str:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        for choice in alias.choices:
            if isinstance(choice, str) and choice.isupper():
                return choice
    return f"{prefix}{name}".upper()


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "(required)"
    else:
        value = info.default
    if value is None:
        return "none"
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    # Paths derived from the checkout's location are shown relative to it, so the text is the same anywhere.
    text = json.dumps(value, default=str).replace(str(REPO), "<repo>")
    return f"`{text}`" if len(text) < 60 else "(see source)"


def _type(info: FieldInfo) -> str:
    text = str(info.annotation).replace("typing.", "").replace("pathlib.", "").replace("<class '", "")
    return text.replace("'>", "").replace("pydantic.types.", "").replace("|", "or")


def _rows(cls: type[ServiceSettings], prefix: str, fields: list[str]) -> list[str]:
    notes: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if isinstance(klass, type) and issubclass(klass, ServiceSettings):
            notes.update(_comments(klass))
    rows = []
    for name in fields:
        info = cls.model_fields[name]
        env = _env_name(name, info, prefix)
        rows.append(f"| `{env}` | {_type(info)} | {_default(info)} | {notes.get(name, '')} |")
    return rows


def render() -> str:
    head = "| variable | type | default | meaning |\n|---|---|---|---|"
    common = list(ServiceSettings.model_fields)
    parts = [
        "# Configuration reference",
        "",
        "Generated from the settings models by `python -m o2ctl.configdoc`; a test keeps this file in step.",
        "Every service reads the common `O2_*` variables and its own `O2_<SERVICE>_*` ones. An invalid value",
        "stops the service at start with exit code 2 and the field's name. Lists and maps are JSON.",
        "",
        "## Common to every service",
        "",
        head,
        *_rows(ServiceSettings, "O2_", common),
    ]
    for service, cls in SERVICES:
        prefix = str(cls.model_config.get("env_prefix", ""))
        own = [f for f in cls.model_fields if f not in common]
        parts += ["", f"## {service} (`{prefix}*`)", "", head, *_rows(cls, prefix, own)]
    return "\n".join(parts) + "\n"


DOC = REPO / "docs" / "configuration.md"

if __name__ == "__main__":
    print(render(), end="")
