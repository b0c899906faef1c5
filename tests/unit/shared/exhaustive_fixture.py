"""A fixture module for ``test_kinds``: one exhaustive dispatch over each closed set of ``shared.kinds``.

It is type-checked by mypy, as written (it passes) and against a copy of ``shared.kinds`` with one
new member added to a set (it must fail at that set's ``assert_never``). Not a test module itself.
"""

from __future__ import annotations

from typing import assert_never

from shared.kinds import CapiAction, HostprepAction, Operation, PrCommand, PrStage


def operation(op: Operation) -> str:
    match op:
        case "create":
            return "create the clusters"
        case "scale":
            return "change the worker sets"
        case "delete":
            return "delete the clusters"
        case "upgrade":
            return "move the clusters to a new Kubernetes version"
        case _:
            assert_never(op)


def command(cmd: PrCommand) -> str:
    match cmd:
        case "create" | "update":
            return "converge on the spec"
        case "delete":
            return "delete the cluster"
        case _:
            assert_never(cmd)


def capi_action(action: CapiAction) -> str:
    match action:
        case "apply" | "scale" | "upgrade":
            return "apply"
        case "delete":
            return "delete"
        case _:
            assert_never(action)


def hostprep_action(action: HostprepAction) -> str:
    match action:
        case "prepare":
            return "prepare"
        case "teardown":
            return "reset"
        case "upgrade":
            return "reset and re-install"
        case _:
            assert_never(action)


def stage(value: PrStage) -> str:
    match value:
        case "hostprep" | "apply" | "provisioning" | "scaling":
            return "forward"
        case "upgrade-control-plane" | "upgrade-workers":
            return "rolling to a new version"
        case "teardown" | "capi-delete":
            return "hosts leaving"
        case _:
            assert_never(value)
