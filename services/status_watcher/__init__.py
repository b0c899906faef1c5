"""status_watcher: watches the management cluster and publishes truthful status transitions."""
