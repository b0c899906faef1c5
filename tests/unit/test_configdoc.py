"""The configuration reference in docs/ is exactly what the settings models say."""

from __future__ import annotations

from o2ctl.configdoc import DOC, render


def test_configuration_reference_is_current() -> None:
    assert DOC.read_text() == render(), "regenerate: python -m o2ctl.configdoc > docs/configuration.md"


def test_every_service_setting_is_documented_with_its_variable() -> None:
    text = render()
    for variable in (
        "O2_NATS_URL",
        "O2_HOSTPREP_KNOWN_HOSTS_FILE",
        "O2_CAPI_RENDERER_CNI_MANIFESTS",
        "O2_O2IMS_PROVISIONING_DEADLINE",
        "O2_FOCOM_INVENTORY_PATH",
        "O2_STATUS_WATCHER_KUBECONFIG",
    ):
        assert f"`{variable}`" in text
