"""The closed sets of ``shared.kinds``: mypy catches an unhandled member, and typed lookups cover their set.

The mypy test type-checks ``exhaustive_fixture.py`` twice: against the real ``shared.kinds`` (clean) and
against a copy where one set gained a member (mypy must fail at that set's ``assert_never``, naming the
new member). Every dispatch in the services has the same shape, so the same failure names them too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared import kinds

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
FIXTURE = HERE / "exhaustive_fixture.py"
#: The member the mypy test adds to one set: a name no set has.
NEW_MEMBER = "rebalance"


def _mypy(root: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict on the fixture, with ``root`` holding the ``shared`` package it imports."""
    (root / "shared").mkdir(exist_ok=True)
    (root / "shared" / "__init__.py").write_text("")
    shutil.copy(FIXTURE, root / "exhaustive_fixture.py")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            "/dev/null",
            "--cache-dir",
            str(root / ".mypy_cache"),
            "exhaustive_fixture.py",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _with_member(set_name: str, member: str) -> str:
    source = (REPO / "shared" / "kinds.py").read_text()
    changed, n = re.subn(rf"^{set_name} = Literal\[", f'{set_name} = Literal["{member}", ', source, flags=re.M)
    assert n == 1, f"{set_name} is not a Literal in shared/kinds.py"
    return changed


def test_the_fixture_is_clean_against_the_real_definitions(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    shutil.copy(REPO / "shared" / "kinds.py", tmp_path / "shared" / "kinds.py")
    got = _mypy(tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr


@pytest.mark.parametrize(
    ("set_name", "function"),
    [
        ("Operation", "operation"),
        ("PrCommand", "command"),
        ("CapiAction", "capi_action"),
        ("HostprepAction", "hostprep_action"),
        ("PrStage", "stage"),
    ],
)
def test_mypy_fails_when_a_new_member_is_not_handled(tmp_path: Path, set_name: str, function: str) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "kinds.py").write_text(_with_member(set_name, NEW_MEMBER))
    got = _mypy(tmp_path)
    assert got.returncode == 1, got.stdout + got.stderr
    errors = [ln for ln in got.stdout.splitlines() if ": error:" in ln]
    # Exactly one error: the dispatch over the changed set, at its assert_never, naming the new member.
    assert len(errors) == 1, got.stdout
    assert f'Argument 1 to "assert_never" has incompatible type "Literal[\'{NEW_MEMBER}\']"' in errors[0]
    line = int(errors[0].split(":")[1])
    source = FIXTURE.read_text().splitlines()
    owner = next(src for src in reversed(source[:line]) if src.startswith("def "))
    assert owner.startswith(f"def {function}("), (owner, errors[0])


def test_the_added_member_is_new_to_every_set() -> None:
    for members in (kinds.OPERATIONS, kinds.PR_COMMANDS, kinds.CAPI_ACTIONS, kinds.HOSTPREP_ACTIONS, kinds.PR_STAGES):
        assert NEW_MEMBER not in members


def test_each_set_lists_its_members_once() -> None:
    for members in (
        kinds.OPERATIONS,
        kinds.PR_COMMANDS,
        kinds.FPR_PHASES,
        kinds.PR_STATES,
        kinds.PR_STAGES,
        kinds.CAPI_ACTIONS,
        kinds.HOSTPREP_ACTIONS,
        kinds.HOST_STEP_STATUSES,
    ):
        assert members and len(set(members)) == len(members)


def test_hostprep_final_status_covers_every_action() -> None:
    from services.hostprep.runner import _FINAL_STATUS

    assert set(_FINAL_STATUS) == set(kinds.HOSTPREP_ACTIONS)
