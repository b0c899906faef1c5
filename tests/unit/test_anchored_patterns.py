"""Names are checked against the whole string: a trailing newline never slips through a ``$`` anchor."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.capi_renderer.domain import is_label_key, is_label_value
from services.focom.request import check_shape
from shared.crd_schema import validate_metadata
from shared.errors import InputError
from shared.payloads import FocomRequest


def test_metadata_names_with_a_trailing_newline_are_invalid() -> None:
    assert validate_metadata({"name": "ok-name", "namespace": "default"}) == []
    assert validate_metadata({"name": "ok-name\n", "namespace": "default"})
    assert validate_metadata({"name": "ok-name", "namespace": "default\n"})
    assert validate_metadata({"name": "ok", "labels": {"app": "v1\n"}})


def test_label_checks_refuse_a_trailing_newline() -> None:
    assert is_label_key("o2ims.oran.org/host-id") and not is_label_key("o2ims.oran.org/host-id\n")
    assert is_label_value("h1") and not is_label_value("h1\n")


def test_focom_request_name_with_a_trailing_newline_is_refused() -> None:
    check_shape(FocomRequest(name="demo", allClusters=True), max_clusters=10)
    with pytest.raises(InputError, match=r"\$\.name"):
        check_shape(FocomRequest.model_construct(name="demo\n", allClusters=True), max_clusters=10)
    with pytest.raises(ValidationError, match="name"):
        FocomRequest(name="demo\n", allClusters=True)
