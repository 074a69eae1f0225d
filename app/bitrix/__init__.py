"""Everything that speaks Bitrix24.

Modules (one job each):

* `errors`    — the exception tree every caller catches at the level it needs.
* `client`    — `client_for(portal_id) -> PortalClient`: the per-portal gateway on b24pysdk (call, batch,
                list_all), with tokens from the database, cross-process refresh lock, Redis rate limiter,
                backoff on QUERY_LIMIT_EXCEEDED / OPERATION_TIME_LIMIT.
* `tokens`    — reading, refreshing (single-use refresh tokens, one refresher at a time) and storing tokens.
* `ratelimit` — the per-portal leaky bucket in Redis shared by every process.
* `sdk`       — the one switch that points b24pysdk at the sandbox (scheme, OAuth server).
* `payload`   — reading PHP bracket-keyed callback forms (and JSON) into dicts; `BadPayload` for odd ones.
* `verify`    — authenticating what a portal sends (application_token, placement auth, frame tokens, CSP).
* `install`   — install / update / uninstall lifecycle, `drop_portal_data`; `reconcile` brings a portal in
                line with manifest.json (two batch requests).
* `events`    — event intake (verify, enqueue, answer at once) and `process_event`, which records events
                in `portal_events` for the sync (`pending_events`, `mark_consumed`).
* `robots`    — robot intake (verify, record `RobotInvocation`, enqueue `run_robot` on `integrations`).
* `connect`   — portals connected by an incoming webhook (`flask portal connect URL`).
* `doctor`    — `flask doctor [PORTAL]` checks; `cli` — the `portal` and `doctor` commands.
"""
