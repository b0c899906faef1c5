"""services/status_watcher package."""
