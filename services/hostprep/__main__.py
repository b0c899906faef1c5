"""Entry point: ``python -m services.hostprep``."""

from services.hostprep.app import main

if __name__ == "__main__":
    raise SystemExit(main())
