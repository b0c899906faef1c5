"""``python -m bench.cpuprofile OUT MODULE [ARG…]``: run ``MODULE`` as ``__main__`` under cProfile, timed by CPU.

``python -m cProfile`` times calls by the wall clock, so on a busy machine a ``send()`` that wakes the
receiver, or any call the scheduler pre-empts, looks expensive. Timing by the process's CPU time shows
what the process itself spends. The stats go to ``OUT`` when the module exits (a service: on SIGTERM).
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    profile = cProfile.Profile(time.process_time)
    try:
        profile.runcall(runpy.run_module, module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
