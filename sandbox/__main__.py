"""`python -m sandbox --port P --data-size N --limits standard|enterprise|off [--latency-ms L] [--seed S]`."""
from __future__ import annotations

import argparse
import gc
import signal
import threading

from .core import SandboxConfig
from .run import start_sandbox


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sandbox", description="A local Bitrix24 portal")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8024)
    ap.add_argument("--data-size", type=int, default=1000, help="number of deals (other entities scale)")
    ap.add_argument("--limits", choices=("standard", "enterprise", "off"), default="standard")
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--operating-limit", type=float, default=480.0, help="seconds per method per 10 min")
    ap.add_argument("--cost-sleep", type=float, default=0.0,
                    help="share of each call's modelled server time to actually spend (1.0 = realistic timing)")
    ap.add_argument("--member-id", default=None, help="fixed member_id of the first portal (default: random)")
    args = ap.parse_args(argv)
    cfg = SandboxConfig(host=args.host, port=args.port, limits=args.limits, latency_ms=args.latency_ms,
                        seed=args.seed, data_size=args.data_size, operating_limit=args.operating_limit, cost_sleep=args.cost_sleep)
    handle = start_sandbox(cfg, member_id=args.member_id)
    # The seeded portal is millions of long-lived objects: keep them out of the garbage collector's full
    # passes, which a burst of concurrent list answers would otherwise trigger again and again.
    gc.freeze()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"sandbox: portal {handle.portal.domain} REST {handle.base_url}/rest/ OAuth {handle.base_url}/oauth/ "
          f"admin {handle.base_url}/sandbox/ member_id {handle.portal.member_id} "
          f"({args.data_size} deals, limits {args.limits})", flush=True)
    stop.wait()
    handle.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
