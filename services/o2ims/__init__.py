"""services/o2ims package."""
