"""CNI manifest loading: pool extraction, normalisation, refusal of what YAML cannot carry, caching."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.capi_renderer import cni
from shared.errors import PermanentError

from .conftest import EXAMPLE_CNI


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cni.clear_cache()


def test_example_manifest_declares_its_pool() -> None:
    m = cni.load_manifest("bridge-pool", EXAMPLE_CNI)
    assert m.pools == (("BRIDGE_IPV4POOL_CIDR", "10.244.0.0/16"),)
    assert m.key == "bridge-pool.yaml"
    assert cni.load_manifest("bridge-pool", EXAMPLE_CNI) is m


def test_find_pools_skips_commented_settings() -> None:
    text = """
            # - name: CALICO_IPV4POOL_CIDR
            #   value: "192.168.0.0/16"
            - name: CALICO_IPV4POOL_CIDR
              value: "10.10.0.0/16"
            - name: "CALICO_IPV6POOL_CIDR"
              # the v6 pool
              value: fd00:10::/64
            - name: OTHER
              value: x
    """
    assert cni.find_pools(text) == (("CALICO_IPV4POOL_CIDR", "10.10.0.0/16"), ("CALICO_IPV6POOL_CIDR", "fd00:10::/64"))
    assert cni.find_pools("kind: Namespace\n") == ()


def test_crlf_and_bom_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"\xef\xbb\xbfkind: A\r\n---\r\nkind: B\r\n")
    assert cni.load_manifest("m", path).text == "kind: A\n---\nkind: B\n"


@pytest.mark.parametrize("content", ["kind: A\x00\n", "kind: A\x85\n", "   \n"])
def test_unembeddable_or_empty_manifests_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PermanentError) as info:
        cni.load_manifest("m", path)
    assert info.value.reason == "CniManifestInvalid"


def test_oversized_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("#" * (1024 * 1024) + "\n", encoding="utf-8")
    with pytest.raises(PermanentError, match="1 MiB") as info:
        cni.load_manifest("big", path)
    assert info.value.reason == "CniManifestTooLarge"


def test_missing_manifest_and_bad_pool_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as info:
        cni.load_manifest("gone", tmp_path / "gone.yaml")
    assert info.value.reason == "CniManifestMissing"
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: X_IPV4POOL_CIDR\n  value: not-a-cidr\n", encoding="utf-8")
    with pytest.raises(PermanentError, match="not a CIDR"):
        cni.load_manifest("bad", bad)


def test_changed_file_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("kind: A\n", encoding="utf-8")
    assert cni.load_manifest("m", path).text == "kind: A\n"
    path.write_text("kind: Longer\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cni.load_manifest("m", path).text == "kind: Longer\n"


def test_payload_objects_are_checked_structurally() -> None:
    ok = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"a.yaml": "x"}}
    assert list(cni.check_payload_object(ok)) == []
    bad = {"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"a b": 1}, "spec": {}}
    rules = {rule for _, rule, _ in cni.check_payload_object(bad)}
    assert rules == {"api-version", "unknown-field", "config-key", "type"}
