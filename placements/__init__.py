"""Pages Bitrix24 opens in its iframe: the app page (`POST /`) and one module per placement
(`POST /placements/<name>`). Every module is thin: it names its placement code and template and turns the
verified frame into template values. Verification, the frame token and the framing headers are shared here.
"""
from __future__ import annotations

from types import ModuleType

from flask import Blueprint, Flask, Response, render_template, request

from app.bitrix.payload import BadPayload, read_body, read_query
from app.bitrix.verify import (FrameRequest, VerificationFailed, allow_framing, issue_frame_token, parse_frame,
                               refuse, verify_frame)
from app.models import Portal, PortalStatus

from . import app_page, deal_tab, left_menu, settings
from .frame_user import FrameUser, frame_user

PAGES: dict[str, ModuleType] = {m.NAME: m for m in (left_menu, deal_tab, settings)}

bp = Blueprint("placements", __name__)


def _error(status: int, title: str, message: str) -> tuple[Response, int]:
    return Response(render_template("frame_error.html", title=title, message=message), status=status), status


def _open(module: ModuleType):
    try:
        body, query = read_body(request), read_query(request)
        if module is app_page and "event" in body:  # an app without install URL gets ONAPPINSTALL here
            from app.api.lifecycle import lifecycle_event
            from app.bitrix.events import LIFECYCLE_EVENTS, event_name

            name = event_name(body)
            if name not in LIFECYCLE_EVENTS:
                raise BadPayload(f"{name} belongs at /events")
            return lifecycle_event(name, body)
        frame = parse_frame(body, query)
        if frame.placement not in module.ACCEPTS:
            raise BadPayload(f"this page serves {module.ACCEPTS[0]}, not {frame.placement}")
        portal = verify_frame(frame)
        if module is app_page and portal.status == PortalStatus.installing:
            from app.api.lifecycle import install_page

            return install_page(portal, frame.protocol, frame.lang)
        return _render(module, frame, portal)
    except BadPayload as exc:
        return _error(400, "This page cannot be opened", str(exc))
    except VerificationFailed as exc:
        refuse(f"frame {module.NAME}", exc)
        return _error(exc.status, "Hub24 could not verify this request", exc.message)


def _render(module: ModuleType, frame: FrameRequest, portal: Portal):
    user = frame_user(frame.auth_id, portal.domain) if frame.auth_id else FrameUser()
    token = issue_frame_token(portal, frame.placement, user.user_id, admin=user.admin)
    if getattr(module, "ADMIN_ONLY", False) and not user.admin:
        # A page, not an error status: Bitrix24 shows it in its slider like any other page.
        template, values = "placements/refused.html", {"title": "Hub24 settings"}
    else:
        template, values = module.TEMPLATE, module.context(frame, portal, user)
    resp = Response(render_template(template, portal=portal, frame=frame, frame_token=token, user=user,
                                    lang=frame.lang, placement_name=module.NAME, **values))
    return allow_framing(resp, portal.domain, frame.protocol), 200


@bp.post("/")
def app_page_view():
    """The app page (PLACEMENT=DEFAULT), also the install page while installation is unfinished."""
    return _open(app_page)


@bp.post("/placements/<name>")
def placement_view(name: str):
    """A placement page by its manifest name (left_menu, deal_tab, settings)."""
    module = PAGES.get(name)
    if module is None:
        return _error(404, "No such page", "Hub24 has no page with this name.")
    return _open(module)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals.setdefault("frame_api", "/api/v1/frame/session")
