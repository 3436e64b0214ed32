"""Decode untrusted files in worker processes, so a crashing native decoder costs one request, not the server.

Native decoders (libsndfile, FFmpeg through PyAV) run C code on whatever a
visitor uploads; one of them segfaulting must not take the web server, or a
CLI run without a message, with it. Each worker is a small
`python -m voice2face.audio.decoder_process` that imports only the decoder (no
torch, no gradio, not the app), caps its own address space
(`limits.DECODER_MEMORY_BYTES`) and answers requests, pickled, over its
stdin and stdout. A request holds a worker to itself, so a crash or a
timeout is that request's alone: the worker is replaced and the caller gets
an AudioError.
"""

from __future__ import annotations

import atexit
import pickle
import queue
import resource
import select
import struct
import subprocess
import sys
from pathlib import Path
from typing import IO, Callable, TypeVar

from ..errors import AudioError
from ..limits import DECODE_TIMEOUT_S, DECODER_MEMORY_BYTES
from .decode import Audio, decode_file, source_name

T = TypeVar("T")

#: Files decoded at once; the web app computes at most this many requests at a time too.
WORKERS = 2
_HEADER = struct.Struct("<Q")


class _Worker:
    """One decoding process and its pipes."""

    def __init__(self, memory_bytes: int):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voice2face.audio.decoder_process", str(memory_bytes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def call(self, fn: Callable, args: tuple, timeout: float):
        """(ok, value): the function's result or the exception it raised; raises EOFError if the
        worker died and TimeoutError if it did not answer in time."""
        _write(self.process.stdin, (fn, args))
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError
        return _read(self.process.stdout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


class DecoderPool:
    """Up to `workers` decoding processes, started on first use and replaced when one dies."""

    def __init__(self, workers: int = WORKERS, memory_bytes: int = DECODER_MEMORY_BYTES, timeout: float = DECODE_TIMEOUT_S):
        self.memory_bytes, self.timeout = memory_bytes, timeout
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(workers):
            self._idle.put(None)  # a slot; its process starts when first needed

    def decode(self, source: str | Path | bytes, sample_rate: int, max_seconds: float) -> Audio:
        """`decode_file` in a worker."""
        return self.run(source_name(source), decode_file, str(source) if isinstance(source, Path) else source, sample_rate, max_seconds)

    def run(self, name: str, fn: Callable[..., T], *args) -> T:
        """`fn(*args)` in a worker of its own; exceptions it raises are raised here."""
        worker = self._idle.get()
        if worker is not None and worker.process.poll() is not None:
            worker = None  # died while idle (killed, out of memory): not this request's fault
        worker = worker or _Worker(self.memory_bytes)
        try:
            ok, value = worker.call(fn, args, self.timeout)
        except TimeoutError:  # before OSError, of which it is a subclass
            worker.kill()
            worker = None
            raise AudioError(f"Decoding {name} took over {self.timeout:g} s; it is damaged or built to do that.") from None
        except (EOFError, OSError, pickle.UnpicklingError):
            worker.kill()
            worker = None
            raise AudioError(
                f"The audio decoder crashed on {name}. It may be damaged or use an unusual codec or channel layout; "
                "convert it to a mono or stereo wav, flac or mp3 and try again."
            ) from None
        finally:
            self._idle.put(worker)
        if ok:
            return value
        if isinstance(value, MemoryError):
            raise AudioError(f"Decoding {name} needed more memory than an upload may use; it is damaged or built to do that.")
        raise value

    def warm_up(self) -> None:
        """Start every worker now, so the first visitors do not wait for them."""
        workers = [self._idle.get() for _ in range(self._idle.qsize())]
        try:
            for k, worker in enumerate(workers):
                workers[k] = worker or _Worker(self.memory_bytes)
                workers[k].call(len, ((),), self.timeout)
        finally:
            for worker in workers:
                self._idle.put(worker)

    def close(self) -> None:
        while not self._idle.empty():
            worker = self._idle.get()
            if worker is not None:
                worker.kill()


def _write(pipe: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(_HEADER.pack(len(data)) + data)
    pipe.flush()


def _read(pipe: IO[bytes]):
    header = pipe.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = pipe.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def serve(memory_bytes: int) -> None:
    """The worker's loop: a request (function, args) in, (ok, result or exception) out."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers may reach the pipe
    while True:
        try:
            fn, args = _read(requests)
        except EOFError:
            return
        try:
            answer = (True, fn(*args))
        except Exception as err:  # noqa: BLE001 - sent back to be raised in the caller
            answer = (False, err)
        try:
            _write(answers, answer)
        except (pickle.PicklingError, TypeError, AttributeError):  # an exception that does not pickle
            _write(answers, (False, AudioError(f"The decoder failed: {answer[1]}")))


#: The process's one pool; workers start on first use (or `warm_up`).
_pool = DecoderPool()
atexit.register(_pool.close)


def decode_in_worker(source: str | Path | bytes, sample_rate: int, max_seconds: float) -> Audio:
    return _pool.decode(source, sample_rate, max_seconds)


def warm_up() -> None:
    _pool.warm_up()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
