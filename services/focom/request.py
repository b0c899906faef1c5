"""focom's request rules; they live in ``shared.focom_request`` so every face of FOCOM validates alike."""

from shared.focom_request import (
    Mode as Mode,
    RequestError as RequestError,
    Wanted as Wanted,
    check_shape as check_shape,
    create_specs as create_specs,
    create_targets as create_targets,
    free_candidates as free_candidates,
    mode_of as mode_of,
    request_fields as request_fields,
    resize as resize,
    resolve_workers as resolve_workers,
    target_clusters as target_clusters,
    vip_exclusions as vip_exclusions,
    wanted_workers as wanted_workers,
)
