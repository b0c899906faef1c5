"""Entry point: ``python -m services.status_watcher``."""

from services.status_watcher.app import main

if __name__ == "__main__":
    raise SystemExit(main())
