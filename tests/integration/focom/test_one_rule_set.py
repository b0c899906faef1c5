"""One rule set: ``o2ctl validate`` and an ``allClusters`` request refuse the same inventory problems.

A table over the bad-input corpus (``tests/e2e/corpus/inventories``), run with and without a VIP pool:
for each file, ``o2ctl validate -o json`` (the CLI, in-process, configured through the same
``O2_FOCOM_*`` environment as focom) and focom's request handler on a real nats-server must report
the same set of (path, rule), or both accept the file. Host-lease conflicts are the one difference
allowed (they depend on what runs, not on the file), and the table starts from an empty bucket.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from o2ctl import cli
from services.focom.inventory_source import InventorySource
from shared.bus import Bus, MessageContext
from shared.errors import InputError
from shared.messages import Envelope
from shared.payloads import FocomRequest, PrRequest
from shared.subjects import FOCOM_REQUESTS
from tests.integration.focom.support import start_focom

CORPUS = Path(__file__).resolve().parents[2] / "e2e" / "corpus" / "inventories"
FILES = sorted(p for p in CORPUS.iterdir() if p.suffix == ".json")
POOL = "10.0.9.0/29,10.0.10.1-10.0.10.3"
Found = frozenset[tuple[str, str]] | None  # None: accepted

#: Files that are valid only because a VIP pool can give their control planes a VIP.
POOL_MAKES_VALID = {"missing-vip-three-masters.json", "missing-vip-three-masters-numeric-ids.json"}


def validate(path: Path, capsys: pytest.CaptureFixture[str]) -> Found:
    code = cli.main(["-o", "json", "validate", str(path)])
    report = json.loads(capsys.readouterr().out)
    if report["valid"]:
        assert code == 0
        return None
    assert code != 0
    return frozenset((p["path"], p["rule"]) for p in report["problems"])


@pytest.mark.parametrize("pool", [False, True], ids=["no-pool", "pool"])
async def test_validate_and_a_request_refuse_the_same_inventory_problems(
    bus: Bus, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, pool: bool
) -> None:
    assert len(FILES) >= 60
    inventory = tmp_path / "input.json"
    inventory.write_text("{}")
    for name in [n for n in os.environ if n.startswith("O2_")]:
        monkeypatch.delenv(name)
    if pool:
        monkeypatch.setenv("O2_FOCOM_VIP_POOL", POOL)
    h = await start_focom(bus, inventory, vip_pool=POOL.split(",") if pool else [])
    disagree: dict[str, tuple[Found, Found]] = {}
    accepted: list[str] = []
    for i, path in enumerate(FILES):
        inventory.write_bytes(path.read_bytes())
        # A fresh source per file: the table must not depend on the file cache noticing the change.
        h.focom.inventory = InventorySource(inventory, **h.focom.settings.inventory_rules())
        said = validate(inventory, capsys)
        req = FocomRequest(name=f"inv-{i}", allClusters=True)
        env = Envelope.wrap(req, source="test", correlation_id=req.name)
        ctx = MessageContext(bus=bus, subject=FOCOM_REQUESTS, deliveries=1, consumer="test", envelope=env)
        try:
            await h.focom.on_request(req, ctx)
            refused: Found = None
        except InputError as exc:
            listed = getattr(exc, "problems", None)
            refused = frozenset((p.path, p.rule) for p in listed) if listed else frozenset({(exc.path, exc.reason)})
        if said != refused:
            disagree[path.name] = (said, refused)
        if said is None and refused is None:
            accepted.append(path.name)
    assert disagree == {}, "\n".join(f"{k}: validate {v[0]} | request {v[1]}" for k, v in disagree.items())
    assert set(accepted) == (POOL_MAKES_VALID if pool else set())
    if pool:
        # The accepted HA clusters got distinct VIPs from the pool, carried in the spec the PR command holds.
        prs = await h.commands.wait(lambda: len(h.prs()) == len(POOL_MAKES_VALID) and h.prs())
        vips = [p.spec.vip for p in prs if isinstance(p, PrRequest) and p.spec is not None]
        assert len(set(vips)) == len(POOL_MAKES_VALID) and all(v and v.startswith("10.0.9.") for v in vips)


def test_the_corpus_names_its_files_uniquely() -> None:
    # Each file is one case of the table: a copy under another name would hide a missing rule.
    contents = [p.read_bytes() for p in FILES]
    assert len(set(contents)) == len(contents)
