"""capi_renderer: renders, validates and applies the BYOH Cluster API objects of a cluster."""
