"""Entry point: ``python -m services.o2ims``."""

from services.o2ims.app import main

if __name__ == "__main__":
    raise SystemExit(main())
