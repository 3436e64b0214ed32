"""Room for uploads, checked as each arrives: the file cache's bound holds at every write, not only at the sweep.

Gradio writes an upload into its cache as it streams in; its sweep (and ours, `cache_sweep`) looked at the
cache's size once a minute. Four threads uploading 49.9 MB files put 8 GiB into a cache meant for 2 GB in
49 s, and the size sweep then deleted a visitor's upload from 40 s before. `UploadGuard` (ASGI middleware
on the upload route) answers, in words, before Gradio writes anything:

- 503 when the cache, with the uploads already on their way, has no room for this one (its declared
  length, or the upload cap when it declares none): it holds at most its bound plus nothing, whatever
  arrives at once, and nothing a visitor uploaded is deleted to make room;
- 429 when one address has put a quarter of the cache's bound into it in the last CACHE_AGE_S;
- 413 for more than MAX_FILES_PER_UPLOAD files in one request (the page sends one; a request of 1,000
  files made 1,000 files, and 20 requests 20,000 in 9.5 s).
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .limits import CACHE_AGE_S, MAX_FILES_PER_UPLOAD, MAX_UPLOAD_BYTES
from .routes import answer as refuse
from .routes import client_address, cut_off_when, route_of, scope_headers


def folder_bytes(folder: Path) -> int:
    """The bytes of every file under `folder` (files that vanish meanwhile count nothing)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


#: The cache folder is walked at most this often (each live chunk is an upload: a walk per chunk would be a
#: walk of thousands of files several times a second); uploads that landed since count at their full size.
MEASURE_EVERY_S = 1.0


class UploadRoom:
    """The cache's room: what is on disk (walked at most every MEASURE_EVERY_S, plus what landed since), what is
    on its way, and what each address has sent lately."""

    def __init__(self, folder: str | Path, max_bytes: int, clock: Callable[[], float] = time.monotonic):
        self.folder, self.max_bytes, self.clock = Path(folder), max_bytes, clock
        self.on_the_way, self.landed, self.measured, self.measured_at = 0, 0, 0, -MEASURE_EVERY_S
        self.sent: dict[str, collections.deque[tuple[float, int]]] = {}
        self.lock = threading.Lock()

    def used(self) -> int:
        """Bytes the cache holds, or may hold once the uploads on their way have landed (under the lock)."""
        if self.clock() - self.measured_at >= MEASURE_EVERY_S:
            self.measured, self.landed, self.measured_at = folder_bytes(self.folder), 0, self.clock()
        return self.measured + self.landed + self.on_the_way

    def take(self, size: int, address: str | None) -> tuple[int, str]:
        """Reserve `size` bytes for an upload from `address` (None: not counted): (0, ""), or the status and words
        saying why there is no room."""
        with self.lock:
            if self.used() + size > self.max_bytes:
                return 503, "The server's room for uploads is full right now; try again in a few minutes."
            if address is not None:
                sent = self.sent.setdefault(address, collections.deque())
                while sent and self.clock() - sent[0][0] > CACHE_AGE_S:
                    sent.popleft()
                if sum(n for _, n in sent) + size > self.max_bytes // 4:
                    return 429, "Your address has uploaded a quarter of this server's room in the last minutes; try again later."
                sent.append((self.clock(), size))
            self.on_the_way += size
            return 0, ""

    def give_back(self, size: int) -> None:
        """An upload has ended: what it reserved is on disk now (counted in full until the next walk)."""
        with self.lock:
            self.on_the_way -= size
            self.landed += size


class UploadGuard:
    """ASGI middleware: an upload is let through only when the cache has room for it (`UploadRoom`), with at
    most MAX_FILES_PER_UPLOAD files."""

    def __init__(self, app: Any, room: UploadRoom, behind_proxy: bool = False):
        self.app, self.room, self.behind_proxy = app, room, behind_proxy

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http" or route_of(scope.get("path", "")).rstrip("/") != "/upload" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = scope_headers(scope)
        declared = headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else MAX_UPLOAD_BYTES
        address = client_address(headers, (scope.get("client") or (None,))[0], self.behind_proxy)
        status, problem = self.room.take(size, address)
        if problem:
            await refuse(send, status, problem)
            return
        try:
            await self.counted(scope, receive, send)
        finally:
            self.room.give_back(size)

    async def counted(self, scope, receive, send) -> None:
        """Pass the upload on, counting its files as they stream past; cut it off once there are too many."""
        files, tail = 0, b""

        def too_many(piece: bytes) -> bool:
            nonlocal files, tail
            seen = tail + piece
            files += seen.count(b'filename="') - tail.count(b'filename="')
            tail = seen[-16:]
            return files > MAX_FILES_PER_UPLOAD

        words = f"Send one recording at a time (at most {MAX_FILES_PER_UPLOAD} files in one upload)."
        await cut_off_when(self.app, scope, receive, send, too_many, 413, words)
