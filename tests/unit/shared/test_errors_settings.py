"""The error tree, classification of foreign exceptions, and settings loading."""

from __future__ import annotations

import errno

import pytest

from services.hostprep.settings import HostprepSettings
from shared.errors import InputError, PermanentError, TemporaryError, classify, register_classifier
from shared.settings import load_settings


def test_classify_builtin_exceptions() -> None:
    assert isinstance(classify(TimeoutError()), TemporaryError)
    assert isinstance(classify(TimeoutError()), TemporaryError)
    assert isinstance(classify(ConnectionRefusedError()), TemporaryError)
    assert isinstance(classify(OSError(errno.EHOSTUNREACH, "no route")), TemporaryError)
    assert isinstance(classify(RuntimeError("x")), TemporaryError)  # unknown means temporary
    perm = PermanentError("p")
    assert classify(perm) is perm
    assert isinstance(InputError("bad"), PermanentError)


def test_registered_classifier_wins() -> None:
    class Foreign(Exception):
        pass

    @register_classifier
    def _mine(exc: BaseException) -> PermanentError | None:
        return PermanentError("denied", reason="Denied") if isinstance(exc, Foreign) else None

    err = classify(Foreign())
    assert isinstance(err, PermanentError) and err.reason == "Denied"


def test_temporary_delay_never_negative() -> None:
    assert TemporaryError("x", delay=-3).delay == 0.0


def test_settings_from_env_and_invalid_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2_NATS_URL", "nats://10.1.1.1:4222")
    monkeypatch.setenv("O2_NATS_PASSWORD", "s3cret-pw")
    s = load_settings(HostprepSettings)
    assert s.nats_url == "nats://10.1.1.1:4222"
    assert "s3cret-pw" not in repr(s) and "s3cret-pw" not in str(s.model_dump())
    monkeypatch.setenv("O2_HTTP_PORT", "not-a-port")
    with pytest.raises(InputError) as err:
        load_settings(HostprepSettings)
    assert "http_port" in str(err.value)
