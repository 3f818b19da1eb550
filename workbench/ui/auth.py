"""Access token of the served app.

Bound to this machine (127.0.0.1, ``localhost``, ``::1``) the app needs no token,
like a notebook server on a laptop; bound to any other address it requires one.
The token comes with the first request (``/?token=…``, the address printed by
``workbench serve``) or from the small form at ``/login``; the server then sets an
HTTP-only, same-site cookie, so the page, its websocket and later visits carry it.
Every document and websocket request of Bokeh's server checks it (they are
``@authenticated``); static assets (Bokeh/Panel JavaScript and CSS) hold no data
and stay public.
"""

from __future__ import annotations

import hmac
import html
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from bokeh.server.auth_provider import AuthProvider
from tornado.web import RequestHandler

from workbench.net import is_loopback

__all__ = ["COOKIE", "TokenAuth", "has_token", "is_loopback", "new_token"]

COOKIE = "workbench_token"
"""Name of the cookie holding the token once given."""

LOGIN_PATH = "/login"
"""Where a browser without a valid token is sent."""


def new_token() -> str:
    """A fresh random token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def _same(given: str | None, token: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), token.encode())


def has_token(handler: RequestHandler, token: str | None) -> bool:
    """Whether the request carries *token* (``?token=…``, which then sets the cookie,
    or the cookie); always True when the app has no token (bound to this machine)."""
    if not token:
        return True
    if _same(handler.get_query_argument("token", None), token):
        if hasattr(handler, "set_cookie"):
            handler.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return True
    return _same(handler.get_cookie(COOKIE), token)


class TokenAuth(AuthProvider):
    """Bokeh auth provider accepting a request that carries *token* (query or cookie)."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            msg = "the app's token must have at least 16 characters"
            raise ValueError(msg)
        self._token = token
        super().__init__()

    # Bokeh's stub types this Callable[[HTTPServerRequest], User]; Bokeh calls it with the RequestHandler
    # (bokeh.server.views.auth_request_handler) and takes None as "not authenticated"
    @property
    def get_user(self) -> Callable[[Any], str | None]:  # type: ignore[override]  # Bokeh's stub, see above
        token = self._token

        def get_user(handler: RequestHandler) -> str | None:
            return "token" if has_token(handler, token) else None

        return get_user

    @property
    def login_url(self) -> str:
        return LOGIN_PATH

    @property
    def login_handler(self) -> type[RequestHandler]:
        token = self._token

        class LoginHandler(RequestHandler):
            """A form asking for the token; a right one sets the cookie and goes to the app."""

            def get(self) -> None:
                self._form("")

            def post(self) -> None:
                if _same(self.get_body_argument("token", None), token):
                    self.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
                    nxt = self.get_query_argument("next", "/")
                    self.redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/")
                    return
                self.set_status(403)
                self._form("Wrong token.")

            def _form(self, message: str) -> None:
                nxt = quote(self.get_query_argument("next", "/"), safe="/")
                self.set_header("Content-Type", "text/html; charset=utf-8")
                self.finish(
                    "<!doctype html><title>RobotOps Workbench</title>"
                    "<h2>RobotOps Workbench</h2><p>This app needs its access token "
                    "(printed by <code>workbench serve</code>).</p>"
                    f"<p style='color:#b00'>{html.escape(message)}</p>"
                    f"<form method='post' action='{LOGIN_PATH}?next={html.escape(nxt, quote=True)}'>"
                    "<input name='token' type='password' autofocus size='40'> <button>Open</button></form>"
                )

            def check_xsrf_cookie(self) -> None:  # the token itself is the secret; no xsrf cookie is used
                return None

        return LoginHandler
