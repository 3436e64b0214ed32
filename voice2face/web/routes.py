"""The routes a stranger can reach, answered in our words before Gradio sees what it would choke on.

Gradio serves many routes this page never uses, and answers malformed calls to the ones it does with a
500 and a 5 KB traceback in the log (a probe left 67): anyone could fill the log. `RouteGuard` (ASGI
middleware) answers, each with a 4xx, a JSON `detail` in words and at most one line in the log:

- routes the page never uses, 404: those that compute outside the queue (`/process_recording` ran
  ffmpeg for 12.8 s on a 235 KB video), `/call/` for any but the public API (`/call/faces`: it reached
  the page's private events),
  the development reload stream (300 open streams took the server's CPU from 8% to 30%), and
  Gradio's other tools (monitoring, profiling, run history, proxy, vibe editing); monitoring opens
  only with `app.py --monitoring`;
- `/run/` and `/api/` serve only the page's few events that skip the queue by design (an example
  loaded into the recorder), called as the page calls them (`/run/predict` with their `fn_index`):
  any other name was a 500 with a traceback, and queued events are the queue's (404);
- `queue/join` bodies that are not a JSON object naming one of the page's events (`fn_index` 999,
  -1 or 1e6 was a KeyError) and a session id of at most 64 letters, digits, `-` and `_`, 422;
- `queue/data` for a session that has joined no event, 404 (it logged two tracebacks, and each
  made-up session was kept);
- a page (session) with MAX_QUEUED_PER_SESSION events in the queue, or an address with
  MAX_QUEUED_PER_CLIENT, 429: one client sending 40 requests at once took 34 of its places, and six
  other visitors were told it was full.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from .limits import MAX_QUEUED_PER_CLIENT, MAX_QUEUED_PER_SESSION

log = logging.getLogger("voice2face.app")

#: Routes the page never uses, by the start of their path under /gradio_api (or the app's root).
CLOSED_ROUTES = (
    "/process_recording", "/dev/", "/profiling/", "/run-history/", "/runs", "/proxy=", "/vibe-", "/undo-vibe-edit",
    "/custom_component/", "/mcp",
)  # fmt: skip
#: Gradio's REST calls, `/call/<api name>` (and `/call/v2/...`): open for the page's public API only.
CALL_ROUTE = re.compile(r"/call/(?:v2/)?([^/]+)(?:/[^/]*)?/?")
#: Routes that run an event outside the queue: only for the events that skip it by design.
DIRECT_ROUTES = ("/run/", "/api/")
MONITORING = "/monitoring"
#: A session id as Gradio's own page makes them (random letters and digits), with room to spare.
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def client_address(headers: Mapping[str, str], peer: str | None, behind_proxy: bool) -> str | None:
    """Who a request comes from, for fair shares: the connection's address, or behind a proxy (which every
    visitor reaches the server through) the first address the proxy forwarded for. None for this machine
    itself when no proxy was declared: its operator, or a proxy nobody said is there, which every visitor
    would seem to share."""
    if behind_proxy:
        forwarded = headers.get("x-forwarded-for", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return None if peer in (None, "127.0.0.1", "::1", "localhost", "testclient") else peer


def scope_headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def route_of(path: str) -> str:
    """The route under Gradio's API prefix: '/gradio_api/queue/join' -> '/queue/join'."""
    return path[len("/gradio_api") :] if path.startswith("/gradio_api/") else path


class RouteGuard:
    """ASGI middleware: closed routes, and malformed queue calls, answered before Gradio reads them.

    `events`: how many events the page has (`fn_index` must be below it); `unqueued`: those that skip the queue
    by design; `known_session`: whether a session has joined an event (Gradio's queue says); `monitoring`:
    whether Gradio's monitoring page is open."""

    def __init__(self, app: Any, events: int, unqueued: set[int], public: set[str], known_session: Callable[[str], bool],
                 queued_by: Callable[[str, str | None], tuple[int, int | None]], monitoring: bool = False, behind_proxy: bool = False):  # fmt: skip
        self.app, self.events, self.unqueued, self.public = app, events, unqueued, public
        self.known_session, self.queued_by = known_session, queued_by
        self.monitoring, self.behind_proxy = monitoring, behind_proxy

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_of(scope.get("path", ""))
        call = CALL_ROUTE.fullmatch(route)
        closed = route.startswith("/call/") and not (call and call[1] in self.public)
        if closed or route.startswith(CLOSED_ROUTES) or (route.startswith(MONITORING) and not self.monitoring):
            await answer(send, 404, "Not used by this page.")
            return
        if route.rstrip("/") == "/queue/data" and scope.get("method") == "GET":
            session = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", [""])[0]
            if not SESSION_ID.fullmatch(session) or not self.known_session(session):
                await answer(send, 404, "No such session: open the page, and its events connect by themselves.")
                return
        if call and scope.get("method") == "POST":
            body = await read_body(receive)
            problem = data_problem(body)
            if problem:
                await answer(send, 422, problem)
                return
            receive = replay(body, receive)
        direct = route.startswith(DIRECT_ROUTES)
        if direct and (route.rstrip("/") not in ("/run/predict", "/api/predict") or scope.get("method") != "POST"):
            await answer(send, 404, "Not used by this page.")
            return
        if direct or (route.rstrip("/") == "/queue/join" and scope.get("method") == "POST"):
            body = await read_body(receive)
            status, problem = (404, "Not used by this page: the page's events go through its queue.") if direct and not self.unqueued_call(body) \
                else (422, self.call_problem(body))  # fmt: skip
            if not problem and not direct:
                status, problem = 429, self.share_problem(scope, json.loads(body)["session_hash"])
            if problem:
                log.info("refused a call: %s", problem)
                await answer(send, status, problem)
                return
            receive = replay(body, receive)
        await self.app(scope, receive, send)

    def share_problem(self, scope: dict[str, Any], session: str) -> str:
        """Why this page or address may not add an event to the queue now (empty: it may)."""
        peer = (scope.get("client") or (None,))[0]
        by_session, by_address = self.queued_by(session, client_address(scope_headers(scope), peer, self.behind_proxy))
        if by_session >= MAX_QUEUED_PER_SESSION:
            return f"This page has {by_session} requests waiting already (at most {MAX_QUEUED_PER_SESSION}); wait for them to finish."
        if by_address is not None and by_address >= MAX_QUEUED_PER_CLIENT:
            return (f"Your address has {by_address} requests waiting already (at most {MAX_QUEUED_PER_CLIENT}, half of this "
                    "server's queue); wait for them to finish.")  # fmt: skip
        return ""

    def unqueued_call(self, body: bytes) -> bool:
        """Whether a body sent to a direct route names one of the events that skip the queue by design."""
        try:
            return json.loads(body).get("fn_index") in self.unqueued
        except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
            return False

    def call_problem(self, body: bytes) -> str:
        """Why a call's body cannot be one of this page's calls (empty: it can)."""
        try:
            call = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return "The request is not JSON."
        if not isinstance(call, dict):
            return "The request must be a JSON object."
        index, session, data = call.get("fn_index"), call.get("session_hash"), call.get("data")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < self.events:
            return f"There is no event {str(index)[:20]!r} on this page."
        if not isinstance(session, str) or not SESSION_ID.fullmatch(session):
            return "session_hash must be 1 to 64 letters, digits, '-' or '_'."
        if not isinstance(data, list):
            return "data must be a list of the event's inputs."
        return ""


def data_problem(body: bytes) -> str:
    """Why a REST call's body is not {"data": [...]} (empty: it is)."""
    try:
        call = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "The request is not JSON."
    return "" if isinstance(call, dict) and isinstance(call.get("data"), list) else 'The request must be {"data": [the inputs]}.'


async def read_body(receive) -> bytes:
    """The whole request body (`request_size.RequestSizeLimit`, outside this, caps it)."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive):
    """A `receive` that gives the app a body already read, then what the connection says next."""
    sent = False

    async def again() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


class CutOff(Exception):
    """A request body cut off as it streamed in (`cut_off_when`)."""


async def cut_off_when(app: Any, scope: dict[str, Any], receive, send, too_much: Callable[[bytes], bool], status: int,
                       detail: str) -> None:  # fmt: skip
    """Pass a request to `app` while `too_much(piece)`, told each piece of its body as it streams in, says it may
    go on; once it says no, the body is cut off there and the answer is ours (`status`, `detail`), whether the
    route lets our exception through or turns it into an answer of its own (Gradio's upload gave a 400)."""
    cut, started, refused = False, False, False

    async def watched_receive() -> dict[str, Any]:
        nonlocal cut
        message = await receive()
        if too_much(message.get("body", b"")):
            cut = True
            raise CutOff
        return message

    async def ours_once_cut(message: dict[str, Any]) -> None:
        nonlocal started, refused
        if cut and not started:
            if not refused:
                refused = True
                await answer(send, status, detail)
            return
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, watched_receive, ours_once_cut)
    except CutOff:
        if not started and not refused:
            await answer(send, status, detail)


async def answer(send, status: int, detail: str) -> None:
    """An ASGI answer of our own: `status`, and {"detail": what is wrong, in words}."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
