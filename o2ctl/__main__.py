"""Entry point: ``python -m o2ctl`` (also installed as the ``o2ctl`` command)."""

from o2ctl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
