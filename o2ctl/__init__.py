"""o2ctl package."""
