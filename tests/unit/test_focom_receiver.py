"""The example receiver accepts exactly what FOCOM's API signs, drops repeats and shows gaps in ``sequence``."""

from __future__ import annotations

import importlib.util
import json
import secrets
from pathlib import Path
from types import ModuleType

import pytest

from services.focom_api.notify import signature

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "focom_receiver.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("focom_receiver", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _note(seq: int) -> bytes:
    return json.dumps(
        {
            "notificationId": f"n{seq}",
            "subscriptionId": "s",
            "consumerSubscriptionId": None,
            "kind": "FocomProvisioningRequest",
            "name": "r",
            "cluster": None,
            "phase": "Creating",
            "stage": None,
            "reason": None,
            "message": "",
            "occurredAt": "2026-01-01T00:00:00+00:00",
            "sequence": seq,
        }
    ).encode()


def test_signature_check_matches_the_api(capsys: pytest.CaptureFixture[str]) -> None:
    ex = _example()
    key = secrets.token_bytes(32).hex()
    raw = _note(1)
    assert ex.signature_ok(key, raw, signature(key, raw))
    assert not ex.signature_ok(key, raw + b" ", signature(key, raw))
    assert not ex.signature_ok(secrets.token_bytes(32).hex(), raw, signature(key, raw))
    assert not ex.signature_ok(key, raw, None)
    r = ex.Receiver(key)
    assert r.accept(raw, signature(key, raw)) == (204, "ok")
    assert r.accept(raw, signature(key, raw)) == (204, "repeat dropped")
    assert r.accept(_note(2), "sha256=" + "0" * 64) == (401, "bad signature")
    assert r.accept(_note(3), signature(key, _note(3))) == (204, "ok")
    out = capsys.readouterr().out
    assert "#1 FocomProvisioningRequest r: Creating" in out and "(!) sequence 3 after 1" in out
