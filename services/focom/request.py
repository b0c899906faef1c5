"""focom's request rules; they live in ``shared.focom_request`` so every face of FOCOM validates alike."""

from shared.focom_request import (
    Mode,
    RequestError,
    Wanted,
    check_shape,
    create_specs,
    create_targets,
    free_candidates,
    mode_of,
    request_fields,
    resize,
    resolve_workers,
    target_clusters,
    vip_exclusions,
    wanted_workers,
)

__all__ = [
    "Mode",
    "RequestError",
    "Wanted",
    "check_shape",
    "create_specs",
    "create_targets",
    "free_candidates",
    "mode_of",
    "request_fields",
    "resize",
    "resolve_workers",
    "target_clusters",
    "vip_exclusions",
    "wanted_workers",
]
