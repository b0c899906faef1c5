"""The write path shared by every verb: metadata rules, status isolation, validation, generation, no-op
detection, finalizers and deletion. All store changes happen synchronously (no awaits), so no locks are needed.
The per-object rules (type, identity, schema validation) are in ``write_rules``.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from shared.objects import meta, now_timestamp

from . import patch
from .admission import admit_delete, admit_write
from .apply import record_update, server_side_apply
from .errors import already_exists, bad_request, conflict, forbidden, invalid, not_found, unsupported_media
from .registry import Registry, ResourceType
from .store import Store
from .write_rules import WriteParams, check_identity, check_type, same_content, validate_write, without_rv

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


class Writer:
    """Applies the server's rules to every change before it reaches the store."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    # reads

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        found = self.store.get(rtype.key, namespace, name)
        if found is None:
            raise not_found(rtype.plural, rtype.group, name)
        return found

    def namespace_usable(self, namespace: str) -> None:
        ns = self.store.get(("", "namespaces"), "", namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if meta(ns).get("deletionTimestamp"):
            raise forbidden(
                f"unable to create new content in namespace {namespace} because it is being terminated",
                plural="namespaces",
                name=namespace,
            )

    # create

    def create(
        self,
        rtype: ResourceType,
        version: str,
        namespace: str,
        body: Any,
        params: WriteParams,
        *,
        applied: bool = False,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        check_type(rtype, version, body)
        md = {k: v for k, v in meta(body).items() if k not in ("resourceVersion", "selfLink", *_SERVER_META)}
        if rtype.namespaced:
            if md.get("namespace") and md["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            md["namespace"] = namespace
            self.namespace_usable(namespace)
        else:
            md.pop("namespace", None)
        if not md.get("name") and md.get("generateName"):
            md["name"] = self._generate_name(rtype, namespace, str(md["generateName"]))
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_timestamp()
        if rtype.has_generation:
            md["generation"] = 1
        new = {**body, "apiVersion": rtype.api_version(version), "kind": rtype.kind, "metadata": md}
        if rtype.has_status(version) and not rtype.builtin:
            new.pop("status", None)  # a custom resource with a status subresource is created without status
        new = validate_write(self.registry, rtype, version, None, new, params)
        admit_write(rtype, None, new, params.user)
        name = str(md.get("name", ""))
        if self.store.get(rtype.key, namespace if rtype.namespaced else "", name) is not None:
            raise already_exists(rtype.plural, rtype.group, name)
        if not applied:
            new = record_update(
                None,
                new,
                manager=params.manager,
                subresource="",
                schema=self.registry.schema(rtype, version),
                api_version=new["apiVersion"],
            )
        if params.dry_run:
            return new
        return self.store.commit("ADDED", rtype.key, new, None)

    def _generate_name(self, rtype: ResourceType, namespace: str, prefix: str) -> str:
        while True:
            name = prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
            if self.store.get(rtype.key, namespace if rtype.namespaced else "", name) is None:
                return name

    # update (PUT, patches, apply)

    def replace(
        self,
        rtype: ResourceType,
        version: str,
        namespace: str,
        name: str,
        body: Any,
        params: WriteParams,
        subresource: str,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        check_type(rtype, version, body)
        check_identity(rtype, namespace, name, body)
        old = self.get(rtype, namespace, name)
        rv = meta(body).get("resourceVersion")
        if rv:
            if str(rv) != meta(old).get("resourceVersion"):
                raise conflict(rtype.plural, rtype.group, name)
        elif not rtype.builtin:
            raise invalid(
                rtype.kind,
                rtype.group,
                name,
                [
                    (
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        return self.update(rtype, version, old, body, params, subresource, "Update")

    def patch(
        self,
        rtype: ResourceType,
        version: str,
        namespace: str,
        name: str,
        raw: bytes,
        content_type: str,
        params: WriteParams,
        subresource: str,
    ) -> dict[str, Any]:
        media = content_type.split(";", maxsplit=1)[0].strip().lower()
        if media == patch.APPLY:
            return self.apply(rtype, version, namespace, name, raw, params, subresource)
        if media == patch.STRATEGIC and rtype.builtin:
            media = patch.MERGE  # documented simplification: built-ins treat strategic merge as merge patch
        if media not in (patch.MERGE, patch.JSON_PATCH):
            accepted = patch.PATCH_TYPES if rtype.builtin else [patch.JSON_PATCH, patch.MERGE, patch.APPLY]
            raise unsupported_media(content_type, accepted)
        old = self.get(rtype, namespace, name)
        view = {**old, "apiVersion": rtype.api_version(version)}
        doc = patch.decode_json(raw)
        if media == patch.MERGE:
            if not isinstance(doc, dict):
                raise bad_request("a merge patch must be a JSON object")
            new = patch.merge_patch(view, doc)
            rv = meta(doc).get("resourceVersion")
        else:
            new = patch.json_patch(view, doc)
            rv = (
                meta(new).get("resourceVersion")
                if meta(new).get("resourceVersion") != meta(old).get("resourceVersion")
                else None
            )
        if not isinstance(new, dict):
            raise bad_request("the patched object is not a JSON object")
        if rv and str(rv) != meta(old).get("resourceVersion"):
            raise conflict(rtype.plural, rtype.group, name)
        check_identity(rtype, namespace, name, new)
        return self.update(rtype, version, old, new, params, subresource, "Update")

    def apply(
        self,
        rtype: ResourceType,
        version: str,
        namespace: str,
        name: str,
        raw: bytes,
        params: WriteParams,
        subresource: str,
    ) -> dict[str, Any]:
        if not params.manager:
            raise invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [("fieldManager", "FieldValueRequired", "Required value: is required for apply patch")],
            )
        cfg = patch.decode_yaml(raw)
        if not isinstance(cfg, dict):
            raise bad_request("the apply configuration must be an object")
        if not cfg.get("apiVersion") or not cfg.get("kind"):
            raise bad_request("invalid object type: apply configurations must set apiVersion and kind")
        check_type(rtype, version, cfg)
        check_identity(rtype, namespace, name, cfg)
        md = {**meta(cfg), "name": name}
        if rtype.namespaced:
            md["namespace"] = namespace
        cfg = {**cfg, "metadata": md}
        if rtype.has_status(version) and not rtype.builtin:
            if subresource == "status":
                cfg = {k: v for k, v in cfg.items() if k in ("apiVersion", "kind", "metadata", "status")}
                cfg["metadata"] = {k: md[k] for k in ("name", "namespace") if k in md}
            else:
                cfg.pop("status", None)
        old = self.store.get(rtype.key, namespace if rtype.namespaced else "", name)
        schema = self.registry.schema(rtype, version)
        api_version = rtype.api_version(version)
        if old is None:
            if subresource:
                raise not_found(rtype.plural, rtype.group, name)
            new = server_side_apply(
                None,
                cfg,
                manager=params.manager,
                force=params.force,
                subresource="",
                schema=schema,
                api_version=api_version,
            )
            return self.create(rtype, version, namespace, new, params, applied=True)
        rv = md.get("resourceVersion")
        if rv and str(rv) != meta(old).get("resourceVersion"):
            raise conflict(rtype.plural, rtype.group, name)
        view = {**old, "apiVersion": api_version}
        new = server_side_apply(
            view,
            cfg,
            manager=params.manager,
            force=params.force,
            subresource=subresource,
            schema=schema,
            api_version=api_version,
        )
        return self.update(rtype, version, old, new, params, subresource, "Apply")

    def update(
        self,
        rtype: ResourceType,
        version: str,
        old: dict[str, Any],
        new: dict[str, Any],
        params: WriteParams,
        subresource: str,
        operation: str,
    ) -> dict[str, Any]:
        """Finish any change of an existing object; a change that changes nothing is not written."""
        old_md = meta(old)
        md = {k: v for k, v in meta(new).items() if k not in ("resourceVersion", "selfLink", *_SERVER_META)}
        md.update({k: old_md[k] for k in ("name", "namespace", *_SERVER_META) if k in old_md})
        if operation != "Apply":
            md.pop("managedFields", None)
            if "managedFields" in old_md:
                md["managedFields"] = old_md["managedFields"]
        new = {**new, "apiVersion": rtype.api_version(version), "kind": rtype.kind, "metadata": md}
        if rtype.has_status(version):
            if subresource == "status":
                new = {
                    **old,
                    "apiVersion": new["apiVersion"],
                    "status": new.get("status"),
                    "metadata": {**old_md, "managedFields": md.get("managedFields")},
                }
                if new["status"] is None:
                    del new["status"]
                if not new["metadata"]["managedFields"]:
                    del new["metadata"]["managedFields"]
            elif "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        elif subresource:
            raise not_found(rtype.plural, rtype.group, str(old_md.get("name")))
        if old_md.get("deletionTimestamp"):
            added = [f for f in meta(new).get("finalizers") or () if f not in (old_md.get("finalizers") or ())]
            if added:
                raise invalid(
                    rtype.kind,
                    rtype.group,
                    str(old_md["name"]),
                    [
                        (
                            "metadata.finalizers",
                            "FieldValueForbidden",
                            f"Forbidden: no new finalizers can be added if the object is being deleted, found new "
                            f"finalizers {added}",
                        )
                    ],
                )
        new = validate_write(self.registry, rtype, version, old, new, params)
        admit_write(rtype, old, new, params.user)
        if operation == "Update":
            new = record_update(
                old,
                new,
                manager=params.manager,
                subresource=subresource,
                schema=self.registry.schema(rtype, version),
                api_version=new["apiVersion"],
            )
        if rtype.has_generation:
            skip = ("apiVersion", "metadata", "status") if rtype.has_status(version) else ("apiVersion", "metadata")
            if not same_content(old, new, skip):
                new["metadata"]["generation"] = int(old_md.get("generation") or 0) + 1
        if params.dry_run:
            return new
        if same_content(without_rv(old), without_rv(new), ("apiVersion",)):
            return old  # a no-op write: no new resourceVersion, no watch event
        if old_md.get("deletionTimestamp") and not meta(new).get("finalizers"):
            return self.store.commit("DELETED", rtype.key, new, old)
        return self.store.commit("MODIFIED", rtype.key, new, old)

    # delete

    def delete(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        *,
        policy: str = "",
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
        admission: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """(object, removed now); with finalizers the object only gets a deletionTimestamp.
        ``admission``: a client's request, which validating webhooks see (the server's own deletes are not)."""
        old = self.get(rtype, namespace, name)
        md = meta(old)
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != md.get("uid"):
            raise conflict(
                rtype.plural,
                rtype.group,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {md.get('uid')}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
            raise conflict(rtype.plural, rtype.group, name)
        is_namespace = rtype.builtin and rtype.kind == "Namespace"
        if is_namespace and name in PROTECTED_NAMESPACES:
            raise forbidden(
                f'namespaces "{name}" is forbidden: this namespace may not be deleted', plural="namespaces", name=name
            )
        if md.get("deletionTimestamp"):
            return old, False
        if admission:
            admit_delete(rtype, old)
        finalizers = list(md.get("finalizers") or ())
        extra = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(policy)
        if extra and extra not in finalizers:
            finalizers.append(extra)
        if dry_run:
            return old, not finalizers and not is_namespace
        if not finalizers and not is_namespace:
            return self.store.commit("DELETED", rtype.key, old, old), True
        new_md = {**md, "deletionTimestamp": now_timestamp(), "deletionGracePeriodSeconds": 0}
        if finalizers:
            new_md["finalizers"] = finalizers
        if rtype.has_generation:
            new_md["generation"] = int(md.get("generation") or 0) + 1
        new = {**old, "metadata": new_md}
        if is_namespace:
            new["status"] = {**(old.get("status") or {}), "phase": "Terminating"}
        return self.store.commit("MODIFIED", rtype.key, new, old), False

    def system_update(self, rtype: ResourceType, old: dict[str, Any], metadata: dict[str, Any]) -> None:
        """A metadata-only change made by the server itself (garbage collector)."""
        version = rtype.storage_version
        new = {**old, "metadata": metadata}
        self.update(rtype, version, old, new, WriteParams(manager="garbage-collector"), "", "Update")

    def remove(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        self.store.commit("DELETED", rtype.key, obj, obj)
