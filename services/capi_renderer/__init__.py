"""services/capi_renderer package."""
