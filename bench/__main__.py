"""`make bench`: Hub24's benchmarks. Each prints `BENCH <name> key=value ...` lines with its ratios.

    python -m bench [limited|unlimited|events|charts ...] [--deals N]
"""
from __future__ import annotations

import argparse
import logging
import warnings


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("which", nargs="*", default=["limited", "unlimited", "events", "charts"])
    ap.add_argument("--deals", type=int, default=None, help="override the benchmark's size")
    args = ap.parse_args()
    if len(args.which) > 1:
        # One process per benchmark, as a worker would be: no memory, threads or buckets carried from one to
        # the next (the unlimited benchmark's peak memory is the syncing process's own).
        import subprocess
        import sys

        failed = 0
        for name in args.which:
            cmd = [sys.executable, "-m", "bench", name] + (["--deals", str(args.deals)] if args.deals else [])
            failed |= subprocess.call(cmd) != 0
        return 1 if failed else 0
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    for name in args.which:
        if name == "limited":
            from . import limited

            limited.run(args.deals or 50_000)
        elif name == "unlimited":
            from . import unlimited

            unlimited.run(args.deals or 200_000)
        elif name == "events":
            from . import events

            events.run(args.deals or 10_000)
        elif name == "charts":
            from . import charts

            charts.run(args.deals or 100_000)
        else:
            ap.error(f"unknown benchmark {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
