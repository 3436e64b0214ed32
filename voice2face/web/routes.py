"""The routes a stranger can reach, answered in our words before Gradio sees what it would choke on.

Gradio serves many routes this page never uses, and answers malformed calls to the ones it does with a
500 and a 5 KB traceback in the log (a probe left 67): anyone could fill the log. `RouteGuard` (ASGI
middleware) answers, each with a 4xx, a JSON `detail` in words and at most one line in the log:

- routes the page never uses, 404: those that compute outside the queue (`/process_recording` ran
  ffmpeg for 12.8 s on a 235 KB video; `/call/` reached private events around the queue's limits),
  the development reload stream (300 open streams took the server's CPU from 8% to 30%), and
  Gradio's other tools (monitoring, profiling, run history, proxy, vibe editing); monitoring opens
  only with `app.py --monitoring`;
- `/run/` and `/api/` serve only the page's few events that skip the queue by design (an example
  loaded into the recorder), called as the page calls them (`/run/predict` with their `fn_index`):
  any other name was a 500 with a traceback, and queued events are the queue's (404);
- `queue/join` bodies that are not a JSON object naming one of the page's events (`fn_index` 999,
  -1 or 1e6 was a KeyError) and a session id of at most 64 letters, digits, `-` and `_`, 422;
- `queue/data` for a session that has joined no event, 404 (it logged two tracebacks, and each
  made-up session was kept).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger("voice2face.app")

#: Routes the page never uses, by the start of their path under /gradio_api (or the app's root).
CLOSED_ROUTES = (
    "/process_recording", "/dev/", "/call/", "/profiling/", "/run-history/", "/runs", "/proxy=", "/vibe-",
    "/undo-vibe-edit", "/custom_component/", "/mcp",
)  # fmt: skip
#: Routes that run an event outside the queue: only for the events that skip it by design.
DIRECT_ROUTES = ("/run/", "/api/")
MONITORING = "/monitoring"
#: A session id as Gradio's own page makes them (random letters and digits), with room to spare.
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def route_of(path: str) -> str:
    """The route under Gradio's API prefix: '/gradio_api/queue/join' -> '/queue/join'."""
    return path[len("/gradio_api") :] if path.startswith("/gradio_api/") else path


class RouteGuard:
    """ASGI middleware: closed routes, and malformed queue calls, answered before Gradio reads them.

    `events`: how many events the page has (`fn_index` must be below it); `unqueued`: those that skip the queue
    by design; `known_session`: whether a session has joined an event (Gradio's queue says); `monitoring`:
    whether Gradio's monitoring page is open."""

    def __init__(self, app: Any, events: int, unqueued: set[int], known_session, monitoring: bool = False):
        self.app, self.events, self.unqueued = app, events, unqueued
        self.known_session, self.monitoring = known_session, monitoring

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_of(scope.get("path", ""))
        if route.startswith(CLOSED_ROUTES) or (route.startswith(MONITORING) and not self.monitoring):
            await answer(send, 404, "Not used by this page.")
            return
        if route.rstrip("/") == "/queue/data" and scope.get("method") == "GET":
            session = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", [""])[0]
            if not SESSION_ID.fullmatch(session) or not self.known_session(session):
                await answer(send, 404, "No such session: open the page, and its events connect by themselves.")
                return
        direct = route.startswith(DIRECT_ROUTES)
        if direct and (route.rstrip("/") not in ("/run/predict", "/api/predict") or scope.get("method") != "POST"):
            await answer(send, 404, "Not used by this page.")
            return
        if direct or (route.rstrip("/") == "/queue/join" and scope.get("method") == "POST"):
            body = await read_body(receive)
            status, problem = (404, "Not used by this page: the page's events go through its queue.") if direct and not self.unqueued_call(body) \
                else (422, self.call_problem(body))  # fmt: skip
            if problem:
                log.info("refused a call: %s", problem)
                await answer(send, status, problem)
                return
            receive = replay(body, receive)
        await self.app(scope, receive, send)

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


async def answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
