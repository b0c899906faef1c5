"""Entry point: ``python -m services.capi_renderer``."""

from services.capi_renderer.app import main

if __name__ == "__main__":
    raise SystemExit(main())
