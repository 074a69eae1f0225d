"""Everything that speaks Bitrix24.

Modules (one job each):

* `errors`    — the exception tree every caller catches at the level it needs.
* `client`    — `client_for(portal_id) -> PortalClient`: the per-portal gateway on b24pysdk (call, batch,
                list_all), with tokens from the database, cross-process refresh lock, Redis rate limiter,
                backoff on QUERY_LIMIT_EXCEEDED / OPERATION_TIME_LIMIT.
* `tokens`    — reading, refreshing (single-use refresh tokens, one refresher at a time) and storing tokens.
* `ratelimit` — the per-portal leaky bucket in Redis shared by every process.
* `sdk`       — the one switch that points b24pysdk at the sandbox (scheme, OAuth server).
* `verify`    — authenticating what a portal sends (application_token, placement auth, frame tokens).
* `install`   — install / update / uninstall lifecycle; `reconcile` brings a portal in line with manifest.json.
* `events`    — event intake (verify, enqueue, answer at once).
"""
