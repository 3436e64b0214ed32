"""Decode untrusted files in a worker process, so a crashing native decoder costs one request, not the server.

Native decoders (libsndfile, FFmpeg through PyAV) run C code on whatever a
visitor uploads; one of them segfaulting must not take the web server, or a
CLI run without a message, with it. Workers are started once by a fork server
that imports only `voice2face.decode` (no torch, no gradio), live for the whole
process, and have their address space capped (`limits.DECODER_MEMORY_BYTES`).
"""

from __future__ import annotations

import atexit
import multiprocessing
import resource
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, TypeVar

from .decode import Audio, decode_file
from .errors import AudioError
from .limits import DECODER_MEMORY_BYTES

T = TypeVar("T")

#: Files decoded at once; the web app computes at most this many requests at a time too.
WORKERS = 2


class DecoderPool:
    """A small pool of decoding processes, replaced whenever one of them dies."""

    def __init__(self, workers: int = WORKERS, memory_bytes: int = DECODER_MEMORY_BYTES):
        self.workers, self.memory_bytes = workers, memory_bytes
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["voice2face.decode"])
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=context, initializer=_cap_memory, initargs=(self.memory_bytes,)
                )
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)

    def decode(self, source: str | Path | bytes, sample_rate: int, max_seconds: float) -> Audio:
        """`decode_file` in a worker."""
        name = "the uploaded file" if isinstance(source, (bytes, bytearray)) else f"the file {Path(source).name}"
        return self.run(name, decode_file, source, sample_rate, max_seconds)

    def run(self, name: str, fn: Callable[..., T], *args) -> T:
        """`fn(*args)` in a worker. A worker death is retried once in a fresh pool (it may have been
        another request's file that crashed it); a second death is this input's doing."""
        for attempt in range(2):
            pool = self._current()
            try:
                return pool.submit(fn, *args).result()
            except BrokenProcessPool:
                self._replace(pool)
            except MemoryError:
                raise AudioError(
                    f"Decoding {name} needed more memory than an upload may use; it is damaged or built to do that."
                ) from None
        raise AudioError(
            f"The audio decoder crashed on {name}. It may be damaged or use an unusual codec or channel layout; "
            "convert it to a mono or stereo wav, flac or mp3 and try again."
        )

    def warm_up(self) -> None:
        """Start the workers now, so the first request does not pay for it."""
        pool = self._current()
        list(pool.map(_ping, range(self.workers)))

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _cap_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _ping(_: int) -> None:
    return None


#: The process's one pool, started on first use.
_pool = DecoderPool()
atexit.register(_pool.close)


def decode_in_worker(source: str | Path | bytes, sample_rate: int, max_seconds: float) -> Audio:
    return _pool.decode(source, sample_rate, max_seconds)


def warm_up() -> None:
    _pool.warm_up()
