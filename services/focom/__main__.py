"""Entry point: ``python -m services.focom``."""

from services.focom.app import main

if __name__ == "__main__":
    raise SystemExit(main())
