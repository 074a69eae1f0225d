"""A Hub24 worker process for the multi-process gateway tests (run as `python -m tests.bitrix.worker`).

Settings come from the environment (the test passes `b24_settings`). Modes:

* ``refresh PORTAL_ID READY_KEY GO_KEY CALLS`` — build the client (tokens loaded), report ready, wait for
  "go", then make CALLS calls; prints ``{"ok": n}`` or ``{"error": class, "code": code}``.
* ``rate PORTAL_ID READY_KEY GO_KEY SECONDS`` — after "go", call for SECONDS seconds through the shared
  rate limiter; prints ``{"ok": n, "rate_limited": n}``.
"""
from __future__ import annotations

import json
import sys
import time

from app import create_app
from app.bitrix.client import client_for
from app.bitrix.errors import BitrixError, RateLimited


def main(argv: list[str]) -> int:
    mode, portal_id, ready_key, go_key, amount = argv[0], int(argv[1]), argv[2], argv[3], float(argv[4])
    app = create_app()
    redis = app.extensions["redis"]
    with app.app_context():
        client = client_for(portal_id, interactive=False)
        redis.incr(ready_key)
        deadline = time.monotonic() + 120
        while redis.blpop([go_key], timeout=2) is None:  # short: redis-py's socket timeout is 5 s
            if time.monotonic() > deadline:
                print(json.dumps({"error": "NoGo"}))
                return 2
        ok = limited = 0
        try:
            if mode == "refresh":
                for _ in range(int(amount)):
                    client.call("crm.deal.list", {"select": ["ID"], "start": -1})
                    ok += 1
            else:
                deadline = time.monotonic() + amount
                while time.monotonic() < deadline:
                    try:
                        client.call("profile")
                        ok += 1
                    except RateLimited:
                        limited += 1
        except BitrixError as exc:
            print(json.dumps({"error": type(exc).__name__, "code": exc.code, "ok": ok}))
            return 1
    print(json.dumps({"ok": ok, "rate_limited": limited}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
