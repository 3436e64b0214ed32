"""Gradio routes this page never uses that would compute outside the queue, answered 404.

`/gradio_api/process_recording` post-processes a screen recording with ffmpeg in
the server, outside the queue's limits: a 235 KB video of an hour of tiny frames
kept ffmpeg busy for 12.8 s, and every stranger can send many at once. The page
has no video, so the route is closed before Gradio sees the request.
"""

from __future__ import annotations

import json
from typing import Any

CLOSED_ROUTES = ("/process_recording",)


def is_closed(path: str) -> bool:
    return path.rstrip("/").endswith(CLOSED_ROUTES)


class ClosedRoutes:
    """ASGI middleware: a request to a closed route is answered 404 without reading its body."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http" or not is_closed(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": "Not used by this page."}).encode()
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
