"""The portal page: an app's placements shown in iframes the way Bitrix24 shows them, so app pages can be
tested in a real browser.

``GET /sandbox/portal/<PLACEMENT>?client_id=...&user_id=1&options={...}`` (on the portal's own port; the
main port serves the first portal) renders a Bitrix24-like page whose iframe receives the frame POST
(PROTOCOL.md §1.3, §6.3: query ``DOMAIN, PROTOCOL, LANG, APP_SID``; body ``AUTH_ID … PLACEMENT,
PLACEMENT_OPTIONS``) through an auto-submitted form targeting it, exactly as the portal does.
``DEFAULT`` is the app page (the install page until installation is finished). ``deal_id=5`` is a
shortcut for ``options={"ID":"5"}``.

The iframe is named ``DOMAIN|PROTOCOL|APP_SID``, which is where @bitrix24/b24jssdk reads them
(``window.name``), and the page answers the SDK's postMessage protocol (dist/esm/frame/message):
a command arrives as the string ``command:params:callbackKey:appSid`` (params JSON, possibly containing
colons, omitted when empty) and is answered with ``callbackKey:JSON`` posted to the app's origin.
Implemented: getInitData, refreshAuth, resizeWindow, setTitle, setScroll, reloadWindow, openPath (a mock
slider), openApplication, closeApplication, setInstallFinish (finishes the installation in the sandbox),
setInstall, setAppOption, setUserOption, getInterface. Messages from another window or with another
APP_SID are ignored, as in Bitrix24. Everything received is kept in ``window.sandboxPortal`` (and shown
in the page's protocol log) for tests.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlparse

from flask import Blueprint, Flask, Response, current_app, redirect, render_template_string, request

from .core import Sandbox

bp = Blueprint("portal_page", __name__, url_prefix="/sandbox/portal")


def _refuse(status: int, message: str) -> Response:
    return Response(render_template_string(_ERROR, message=message), status=status, mimetype="text/html")


def _portal(sandbox: Sandbox, member_id: str | None):
    with sandbox.lock:
        portals = list(sandbox.portals.values())
    if member_id:
        return next((p for p in portals if p.member_id == member_id), None)
    host = request.host
    return next((p for p in portals if p.domain == host), portals[0] if portals else None)


def _int(value: str | None, default: int) -> int | None:
    if value in (None, ""):
        return default
    return int(value) if value.isdigit() and len(value) < 10 else None


@bp.get("/<placement>")
def portal_page(placement: str):
    """A Bitrix24-like page showing `placement` of app `client_id` as user `user_id`."""
    from .lifecycle.auth import frame_fields
    from .lifecycle.install import LifecycleError, installation

    sandbox: Sandbox = current_app.config["SANDBOX"]
    placement = placement.upper()
    if not placement.replace("_", "").isalnum() or len(placement) > 64:
        return _refuse(400, "The placement code is malformed.")
    portal = _portal(sandbox, request.args.get("member_id"))
    if portal is None:
        return _refuse(404, "No such portal.")
    if request.host != portal.domain:  # the page must run on the portal's own origin, as in Bitrix24
        return redirect(f"http://{portal.domain}{request.full_path}", code=302)
    client_id = request.args.get("client_id", "")
    if not client_id:
        installed = [cid for cid, i in portal.installations.items() if not i.uninstalled]
        if len(installed) != 1:
            return _refuse(400, "Name the app: ?client_id=... (installed here: " + (", ".join(installed) or "none") + ").")
        client_id = installed[0]
    user_id = _int(request.args.get("user_id"), 1)
    if user_id is None or user_id not in portal.crm.users:
        return _refuse(400, "user_id must be the id of a user of this portal.")
    try:
        options: Any = json.loads(request.args.get("options") or "{}")
    except ValueError:
        return _refuse(400, "options must be a JSON object.")
    if not isinstance(options, dict):
        return _refuse(400, "options must be a JSON object.")
    if request.args.get("deal_id"):
        if not request.args["deal_id"].isdigit():
            return _refuse(400, "deal_id must be a number.")
        options["ID"] = request.args["deal_id"]
    try:
        inst = installation(portal, client_id)
    except LifecycleError as exc:
        return _refuse(404, str(exc))
    if placement == "DEFAULT":
        url = inst.app.handler_url if inst.installed else (inst.app.install_url or inst.app.handler_url)
        options_sent: Any = None
    else:
        bindings = [b for b in inst.placements if b.placement == placement]
        if not bindings or not inst.installed:
            bound = sorted({b.placement for b in inst.placements})
            return _refuse(404, f"No handler is shown for {placement} (bound: {', '.join(bound) or 'none'}; "
                                f"installation finished: {'yes' if inst.installed else 'no'}).")
        url = bindings[0].handler
        options_sent = options
    if not url:
        return _refuse(404, "The application has no page URL.")
    query, body = frame_fields(inst, user_id, placement, options_sent, request.args.get("lang"))
    target = urlparse(url)
    user = portal.crm.users[user_id]
    init_data = {
        "LANG": query["LANG"], "DOMAIN": portal.domain, "PROTOCOL": 0, "PATH": target.path or "/",
        "AUTH_ID": body["AUTH_ID"], "AUTH_EXPIRES": body["AUTH_EXPIRES"], "REFRESH_ID": body["REFRESH_ID"],
        "MEMBER_ID": portal.member_id, "IS_ADMIN": bool(user.get("IS_ADMIN")), "PLACEMENT": placement,
        "PLACEMENT_OPTIONS": options if placement != "DEFAULT" else {}, "INSTALL": not inst.installed,
        "FIRST_RUN": False, "APP_OPTIONS": dict(getattr(inst, "options", {}) or {}), "USER_OPTIONS": {},
    }
    sep = "&" if target.query else "?"
    return Response(render_template_string(
        _PAGE, placement=placement, app_name=inst.app.name or "App", client_id=client_id,
        action=url + sep + urlencode(query), frame_name=f"{portal.domain}|0|{query['APP_SID']}",
        body=body, app_sid=query["APP_SID"], app_origin=f"{target.scheme}://{target.netloc}",
        init_data=init_data, member_id=portal.member_id, user_id=user_id, domain=portal.domain,
        user_name=" ".join(x for x in (user.get("NAME"), user.get("LAST_NAME")) if x) or f"User {user_id}",
        theme=request.args.get("theme", "light") if request.args.get("theme") in ("light", "dark") else "light",
        options=options), mimetype="text/html")


def init_app(app: Flask) -> None:
    """Register the portal page on the sandbox's WSGI app."""
    app.register_blueprint(bp)


_ERROR = """<!doctype html><meta charset="utf-8"><title>Bitrix24 (sandbox)</title>
<body style="font:14px sans-serif;margin:40px"><h1>Cannot show this page</h1><p id="error">{{ message }}</p></body>"""

_PAGE = r"""<!doctype html>
<html lang="en" data-theme="{{ theme }}"><head><meta charset="utf-8">
<title>{{ app_name }} · Bitrix24 (sandbox)</title>
<style>
  body { margin: 0; font: 14px/1.4 "Open Sans", "Helvetica Neue", Arial, sans-serif; background: #eef2f4; color: #333; }
  [data-theme=dark] body { background: #15171a; color: #e6e8ea; }
  .b24-side { position: fixed; inset: 0 auto 0 0; width: 220px; background: #1e3a5f; color: #fff; padding: 14px 0; }
  .b24-side .logo { font-weight: 700; font-size: 18px; padding: 0 18px 14px; }
  .b24-side a { display: block; color: #dfe8f1; padding: 8px 18px; text-decoration: none; }
  .b24-side a.active { background: rgba(255,255,255,.14); color: #fff; }
  .b24-main { margin-left: 220px; padding: 14px 22px; }
  .b24-top { display: flex; align-items: center; gap: 12px; margin-bottom: 12px; }
  .b24-top h1 { font-size: 24px; font-weight: 300; margin: 0; flex: 1; }
  .b24-tabs { display: flex; gap: 2px; margin-bottom: -1px; }
  .b24-tabs span { padding: 8px 14px; background: #dfe5ea; border-radius: 8px 8px 0 0; color: #535c69; }
  .b24-tabs span.active { background: #fff; color: #333; }
  [data-theme=dark] .b24-tabs span.active { background: #1b1e22; color: #e6e8ea; }
  .b24-frame-box { background: #fff; border-radius: 0 12px 12px 12px; overflow: hidden; }
  [data-theme=dark] .b24-frame-box { background: #1b1e22; }
  iframe { display: block; width: 100%; height: 600px; border: 0; }
  .b24-slider { position: fixed; inset: 0 0 0 30%; background: #fff; box-shadow: -8px 0 24px rgba(0,0,0,.2);
                padding: 24px; color: #333; }
  .b24-slider.hidden, .hidden { display: none; }
  .b24-banner { background: #e5f9d9; border-radius: 8px; padding: 8px 12px; margin-bottom: 10px; }
  details.log { margin-top: 14px; font-size: 12px; color: #828b95; }
  details.log pre { white-space: pre-wrap; max-height: 220px; overflow: auto; }
</style></head>
<body>
<nav class="b24-side">
  <div class="logo">Bitrix24 <small style="opacity:.6">sandbox</small></div>
  {% set q = "client_id=" ~ client_id ~ "&user_id=" ~ user_id ~ "&member_id=" ~ member_id ~ "&theme=" ~ theme %}
  <a href="/sandbox/portal/DEFAULT?{{ q }}" class="{{ 'active' if placement == 'DEFAULT' }}">Applications · {{ app_name }}</a>
  <a href="/sandbox/portal/LEFT_MENU?{{ q }}" class="{{ 'active' if placement == 'LEFT_MENU' }}">{{ app_name }} (left menu)</a>
  <a href="/sandbox/portal/CRM_DEAL_DETAIL_TAB?{{ q }}&deal_id={{ options.get('ID', '1') }}" class="{{ 'active' if placement == 'CRM_DEAL_DETAIL_TAB' }}">CRM · Deal card</a>
  <a href="/sandbox/portal/REST_APP_URI?{{ q }}" class="{{ 'active' if placement == 'REST_APP_URI' }}">{{ app_name }} settings</a>
</nav>
<main class="b24-main">
  <div class="b24-top"><h1 id="b24-title">{% if placement == 'CRM_DEAL_DETAIL_TAB' %}Deal #{{ options.get('ID') }}{% else %}{{ app_name }}{% endif %}</h1>
    <span id="b24-user">{{ user_name }}</span></div>
  <div class="b24-banner hidden" id="b24-install-finished">Installation finished: the application is installed.</div>
  {% if placement == 'CRM_DEAL_DETAIL_TAB' %}<div class="b24-tabs"><span>General</span><span>Products</span><span>History</span><span class="active">{{ app_name }}</span></div>{% endif %}
  <div class="b24-frame-box">
    <iframe id="app-frame" name="{{ frame_name }}" title="{{ app_name }}" src="about:blank"></iframe>
  </div>
  <details class="log"><summary>Frame protocol log</summary><pre id="b24-log"></pre></details>
</main>
<aside class="b24-slider hidden" id="b24-slider"><button type="button" id="b24-slider-close" style="float:right">Close</button>
  <h2>Bitrix24 slider</h2><p>Opened <code id="b24-slider-path"></code></p></aside>
<form id="frame-form" method="post" action="{{ action }}" target="{{ frame_name }}" class="hidden">
  {% for k, v in body.items() %}<input type="hidden" name="{{ k }}" value="{{ v }}">{% endfor %}
</form>
<script>
(function () {
  var APP_SID = {{ app_sid|tojson }}, APP_ORIGIN = {{ app_origin|tojson }};
  var INIT = {{ init_data|tojson }};
  var ctx = {memberId: {{ member_id|tojson }}, clientId: {{ client_id|tojson }}, userId: {{ user_id|tojson }}};
  var frame = document.getElementById("app-frame"), form = document.getElementById("frame-form");
  var state = window.sandboxPortal = {messages: [], rejected: [], resized: [], opened: [], titles: [],
                                      installFinished: false, initDataSent: 0, closed: false};
  var logEl = document.getElementById("b24-log");
  function log(line) { logEl.textContent += line + "\n"; }

  function reply(key, answer) {
    frame.contentWindow.postMessage(key + ":" + JSON.stringify(answer === undefined ? {} : answer), APP_ORIGIN);
  }
  function admin(op, params) {
    return fetch("/sandbox/" + op, {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(Object.assign({member_id: ctx.memberId, client_id: ctx.clientId}, params || {}))})
      .then(function (r) { return r.json().then(function (b) { if (!r.ok) throw new Error(b.error_description || r.status); return b; }); });
  }
  var slider = document.getElementById("b24-slider"), pendingSlider = null;
  document.getElementById("b24-slider-close").onclick = function () {
    slider.classList.add("hidden");
    if (pendingSlider) { reply(pendingSlider, {result: "close"}); pendingSlider = null; }
  };

  var handlers = {
    getInitData: function (p, key) { state.initDataSent++; reply(key, INIT); },
    refreshAuth: function (p, key) {
      admin("issue_tokens", {user_id: ctx.userId}).then(function (t) {
        INIT.AUTH_ID = t.access_token; INIT.REFRESH_ID = t.refresh_token; INIT.AUTH_EXPIRES = String(t.expires_in || 3600);
        reply(key, {AUTH_ID: INIT.AUTH_ID, REFRESH_ID: INIT.REFRESH_ID, AUTH_EXPIRES: INIT.AUTH_EXPIRES});
      });
    },
    resizeWindow: function (p, key) {
      var h = parseInt(p && p.height, 10);
      if (h > 0) frame.style.height = Math.max(h, 100) + "px";
      state.resized.push({width: p && p.width, height: h});
      reply(key, {});
    },
    setTitle: function (p, key) { document.getElementById("b24-title").textContent = p.title; state.titles.push(p.title); reply(key, {}); },
    setScroll: function (p, key) { window.scrollTo(0, parseInt(p.scroll, 10) || 0); reply(key, {}); },
    reloadWindow: function (p, key) { form.submit(); },
    openPath: function (p, key) {
      var u = new URL(p.path, location.origin);
      var path = u.pathname + u.search;
      state.opened.push(path);
      document.getElementById("b24-slider-path").textContent = path;
      slider.classList.remove("hidden");
      pendingSlider = key;
    },
    openApplication: function (p, key) { state.opened.push("app:" + JSON.stringify(p || {})); reply(key, {}); },
    closeApplication: function (p, key) { state.closed = true; frame.classList.add("hidden"); reply(key, {}); },
    setInstall: function (p, key) { reply(key, {}); },
    setInstallFinish: function (p, key) {
      admin("finish_install").then(function () {
        state.installFinished = true; INIT.INSTALL = false;
        document.getElementById("b24-install-finished").classList.remove("hidden");
        reply(key, {});
      }, function (e) { log("installFinish failed: " + e.message); reply(key, {result: "error", errorCode: "INSTALL_FAILED"}); });
    },
    setAppOption: function (p, key) { INIT.APP_OPTIONS[p.name] = p.value; reply(key, {}); },
    setUserOption: function (p, key) { INIT.USER_OPTIONS[p.name] = p.value; reply(key, {}); },
    getInterface: function (p, key) { reply(key, {command: [], event: []}); }
  };

  window.addEventListener("message", function (ev) {
    if (ev.source !== frame.contentWindow || typeof ev.data !== "string") {
      if (ev.source === frame.contentWindow) state.rejected.push("non-string message");
      return;
    }
    var parts = ev.data.split(":");
    if (parts.length < 3) { state.rejected.push(ev.data.slice(0, 80)); return; }
    var cmd = parts[0], sid = parts[parts.length - 1], key = parts[parts.length - 2];
    var raw = parts.slice(1, -2).join(":"), params = null;
    if (sid !== APP_SID) { state.rejected.push(cmd + " (wrong APP_SID)"); return; }
    if (raw) { try { params = JSON.parse(raw); } catch (e) { params = raw; } }
    state.messages.push({command: cmd, params: params});
    log(cmd + (raw ? " " + raw.slice(0, 200) : ""));
    var fn = handlers[cmd];
    if (fn) fn(params, key);
    else reply(key, {result: "error", errorCode: "METHOD_NOT_SUPPORTED_ON_DEVICE"});
  });
  form.submit();
})();
</script>
</body></html>
"""
