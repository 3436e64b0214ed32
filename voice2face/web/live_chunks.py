"""Every chunk of a Live recording, in the order it reached the server.

Gradio keeps only a stream's newest chunk: each POST to `/stream/<event id>` overwrites the one before,
and the event's function is called once per wake-up. Under load, chunks that came while a call ran were
lost: with four API clients busy, an 8 s recording reached the comparison as 6.3 s, though the page
said none was lost. `LiveChunkTap` (ASGI middleware) notes each chunk of the Live tab's streams as it
arrives, the first from the event's join and the rest from its stream, and the page's Live handler
takes them all, in order (`ChunkArrivals.take`); Gradio's own argument only says that audio came.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import AudioError
from .routes import read_body, replay, route_of

#: Chunks one recording may have noted and not yet taken (the page sends about ten a second; the handler
#: takes them at each call, so only a stalled server comes near this).
MAX_WAITING_CHUNKS = 300
#: Sessions with chunks noted at once (a recording is one session; refused streams leave theirs): the oldest goes first.
MAX_NOTED_SESSIONS = 64
#: Streams remembered as finished per session, whose late chunks are not the next recording's.
FINISHED_REMEMBERED = 8
BEHIND = "The server has fallen too far behind your microphone; stop and record again in a minute."


class ChunkArrivals:
    """The Live chunks that reached the server and were not yet taken, per session, in arrival order.
    Only files uploaded to this server (under `upload_folder`) are noted. Thread-safe."""

    def __init__(self, upload_folder: Path, per_session: int = MAX_WAITING_CHUNKS, sessions: int = MAX_NOTED_SESSIONS):
        self.upload_folder = os.path.realpath(upload_folder)
        self.per_session, self.sessions = per_session, sessions
        self.noted: OrderedDict[str, deque[tuple[str, str]]] = OrderedDict()
        self.behind: set[str] = set()  # sessions that sent more than `per_session` before a call took them
        self.finished: dict[str, deque[str]] = {}  # session -> ids of its stopped streams
        self.lock = threading.Lock()

    def arrive(self, session: str, stream: str | None, data: Any) -> None:
        """Note one chunk as it arrives: the event's data, [file data, token]; `stream`: its stream's event id
        (None for the first chunk, which comes with the join). Anything else, or a file not uploaded here, is
        left to Gradio, which refuses it."""
        path, token = chunk_of(data)
        if path is None or not self.uploaded_here(path):
            return
        with self.lock:
            if stream is not None and stream in self.finished.get(session, ()):
                return  # it came after Stop had taken the recording's chunks
            waiting = self.noted.setdefault(session, deque())
            self.noted.move_to_end(session)
            if len(waiting) >= self.per_session:
                self.behind.add(session)
            else:
                waiting.append((path, token))
            while len(self.noted) > self.sessions:
                oldest, _ = self.noted.popitem(last=False)
                self.behind.discard(oldest)

    def take(self, session: str) -> list[tuple[str, str]]:
        """The session's chunks noted since the last take, oldest first: (path, token). An AudioError if it sent
        more than the server could note before this take (the recording would have a gap)."""
        with self.lock:
            chunks = list(self.noted.pop(session, ()))
            if session in self.behind:
                self.behind.discard(session)
                raise AudioError(BEHIND)
        return chunks

    def finish(self, session: str, streams: list[str]) -> list[tuple[str, str]]:
        """The recording of `session` has stopped: its chunks noted and not yet taken, oldest first. Chunks of its
        `streams` that arrive from now on are not noted: the next recording's stream is another."""
        with self.lock:
            remembered = self.finished.setdefault(session, deque(maxlen=FINISHED_REMEMBERED))
            remembered.extend(streams)
            while len(self.finished) > self.sessions:
                del self.finished[next(iter(self.finished))]
            self.behind.discard(session)
            return list(self.noted.pop(session, ()))

    def uploaded_here(self, path: str) -> bool:
        real = os.path.realpath(path)
        return os.path.commonpath([real, self.upload_folder]) == self.upload_folder and os.path.isfile(real)


def chunk_of(data: Any) -> tuple[str | None, str]:
    """The file path and token of a Live event's data, as the page sends it: [{"path": ...}, token]."""
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None, ""
    path, token = data[0].get("path"), data[1] if len(data) > 1 else ""
    return (path if isinstance(path, str) else None), (token if isinstance(token, str) else "")


class LiveChunkTap:
    """ASGI middleware: each chunk of the Live tab's streams noted in `arrivals` as its request arrives, then the
    request passed on to Gradio unchanged. `live_event`: the Live event's index among the page's events;
    `live_session_of`: the session of a Live stream Gradio holds, by its event id (None: not one)."""

    def __init__(self, app: Any, arrivals: ChunkArrivals, live_event: int, live_session_of: Callable[[str], str | None]):
        self.app, self.arrivals, self.live_event, self.live_session_of = app, arrivals, live_event, live_session_of

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            route = route_of(scope.get("path", "")).rstrip("/")
            parts = route.split("/")
            stream = parts[2] if len(parts) == 3 and parts[1] == "stream" else None
            session = self.live_session_of(stream) if stream else None
            if session is not None or route == "/queue/join":
                body = await read_body(receive)
                self.note(body, session, stream)
                receive = replay(body, receive)
        await self.app(scope, receive, send)

    def note(self, body: bytes, session: str | None, stream: str | None) -> None:
        try:
            call = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(call, dict):
            return
        if stream is None and call.get("fn_index") == self.live_event and isinstance(call.get("session_hash"), str):
            session = call["session_hash"]  # a join of the Live event: its first chunk
        if session is not None:
            self.arrivals.arrive(session, stream, call.get("data"))
