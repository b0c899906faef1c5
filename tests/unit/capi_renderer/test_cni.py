"""CNI manifest loading: pool extraction, normalisation, refusal of what YAML cannot carry, caching."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

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


STOCK_SHAPE = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: calico-node
  namespace: kube-system
spec:
  template:
    spec:
      containers:
        - name: calico-node
          env:
            - name: DATASTORE_TYPE
              value: "kubernetes"
            # The default IPv4 pool, commented out as the release ships it.
            # - name: CALICO_IPV4POOL_CIDR
            #   value: "192.168.0.0/16"
            - name: FELIX_IPV6SUPPORT
              value: "false"
"""


def _env(text: str) -> dict[str, str]:
    doc = yaml.safe_load(text)
    return {e["name"]: e["value"] for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_a_commented_out_pool_is_set_live_to_the_pod_cidr(tmp_path: Path) -> None:
    path = tmp_path / "calico.yaml"
    path.write_text(STOCK_SHAPE, encoding="utf-8")
    manifest = cni.load_manifest("calico", path)
    assert manifest.pools == ()
    changed = manifest.for_pod_cidr("10.244.0.0/16")
    assert changed.pools == (("CALICO_IPV4POOL_CIDR", "10.244.0.0/16"),)
    assert _env(changed.text) == {
        "DATASTORE_TYPE": "kubernetes",
        "CALICO_IPV4POOL_CIDR": "10.244.0.0/16",
        "FELIX_IPV6SUPPORT": "false",
    }
    assert changed.for_pod_cidr("10.244.0.0/16") is changed
    assert manifest.for_pod_cidr("fd00:10::/56") is manifest  # no IPv6 pool declared: the CNI's default applies


def test_the_sandbox_standin_takes_the_pod_cidr_like_the_release_manifest() -> None:
    standin = cni.load_manifest("calico", EXAMPLE_CNI.parent / "calico-standin.yaml")
    changed = standin.for_pod_cidr("192.168.0.0/16")
    assert changed.pools == (("CALICO_IPV4POOL_CIDR", "192.168.0.0/16"),)
    assert cni.document_ids(changed.text) == cni.document_ids(standin.text)


@pytest.mark.parametrize(
    "pod_cidr",
    [
        "fd00::%0a/64",  # a zone id: ipaddress accepts it, YAML would carry whatever follows the %
        'fd00::%x"\n            - name: INJECTED\n              value: "1/64',
        "10.244.0.0/16 ",
        "10.244.0.1/16",  # host bits set
    ],
)
def test_a_pod_cidr_that_is_not_a_plain_cidr_never_reaches_the_manifest(tmp_path: Path, pod_cidr: str) -> None:
    path = tmp_path / "calico.yaml"
    path.write_text(STOCK_SHAPE, encoding="utf-8")
    for manifest in (cni.load_manifest("calico", path), cni.load_manifest("bridge-pool", EXAMPLE_CNI)):
        with pytest.raises(PermanentError, match="not a plain CIDR") as info:
            manifest.for_pod_cidr(pod_cidr)
        assert info.value.reason == "CniManifestInvalid"


def test_the_substituted_text_is_checked_as_yaml_documents() -> None:
    before = cni.CniManifest("m", STOCK_SHAPE, ())
    after = STOCK_SHAPE.replace("# - name: CALICO", "- name: CALICO").replace(
        '#   value: "192.168.0.0/16"', '  value: "10.1.0.0/16"'
    )
    good = cni.CniManifest("m", after, cni.find_pools(after))
    cni.recheck(before, good, "_IPV4POOL_CIDR", "10.1.0.0/16")
    for text, problem in (
        (after + "---\nkind: Extra\n", "documents changed"),
        (after.replace('value: "10.1.0.0/16"', 'value: "10.2.0.0/16"'), "settings are"),
        (after.replace('  value: "10.1.0.0/16"', "value: [10.1.0.0/16"), "no longer parses"),
    ):
        with pytest.raises(PermanentError, match=problem) as info:
            cni.recheck(before, cni.CniManifest("m", text, cni.find_pools(text)), "_IPV4POOL_CIDR", "10.1.0.0/16")
        assert info.value.reason == "CniManifestInvalid"
