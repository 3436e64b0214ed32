"""A cap on the bytes of every request body the web server reads, before any route sees them.

Gradio caps uploads (`max_file_size`) but not the JSON of its queue: a 60 MB body to
`/gradio_api/queue/join` was read, parsed and echoed into the log. This ASGI
middleware answers 413 to a body over its cap, whether the client declares the
length (refused before reading) or streams it (refused once the cap is passed).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from .limits import MAX_FORM_OVERHEAD_BYTES, MAX_REQUEST_BYTES, MAX_UPLOAD_BYTES
from .routes import answer, cut_off_when

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def body_cap(path: str) -> int:
    """Uploads may carry a file; every other request is a little JSON."""
    return MAX_UPLOAD_BYTES + MAX_FORM_OVERHEAD_BYTES if path.rstrip("/").endswith("/upload") else MAX_REQUEST_BYTES


class RequestSizeLimit:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = body_cap(scope.get("path", ""))
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await _refuse(send, cap)
            return
        received = 0

        def past_cap(piece: bytes) -> bool:
            nonlocal received
            received += len(piece)
            return received > cap

        await cut_off_when(self.app, scope, receive, send, past_cap, 413, too_large_text(cap))


def too_large_text(cap: int) -> str:
    return f"The request is larger than this server accepts ({cap // 1024} KB at most here)."


async def _refuse(send, cap: int) -> None:
    await answer(send, 413, too_large_text(cap))
