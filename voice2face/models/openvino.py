"""OpenVINO for the CPU, shared by every network the server runs through it (CAM++'s frame-level layers,
the face network's graphs): compiled graphs kept on disk, so a restart reads them back.

- **A cache on disk.** Each graph is saved as OpenVINO IR under a key made of the weights' hash, what
  the graph takes, and the versions of voice2face and OpenVINO (`cache_key`), and OpenVINO keeps its compiled blob beside
  it: a restart reads both back instead of tracing and compiling again. A cache that cannot be
  written is skipped with a log line; a damaged one is rebuilt.
- **Stale graphs removed**: every upgrade of voice2face or OpenVINO and every retrained checkpoint keys new folders
  (30-60 MB each); a folder no start has opened for `STALE_AFTER_DAYS` is removed when another is opened.
- **Tracing in a child process** (`trace_in_child_process`): tracing leaves a server holding memory
  it never gives back; a child process takes it with it.
- **No telemetry**: OpenVINO runs with its own stand-in for its telemetry (`voice2face/process.py`).
- f32 unless a graph asks otherwise (`compile_cached(..., precision)`): on CPUs with bf16 units
  OpenVINO would otherwise round activations to bf16 by itself. A graph that asks for bf16 or int8 gets it
  only where the CPU computes it in its own units (`computed_precision`); elsewhere it would be emulated,
  slower than f32, and computes in f32. An int8 graph is one whose FakeQuantize nodes say which layers
  compute in INT8; the rest of it computes in f32.

`openvino` is imported only when a graph is built or compiled: it is the web app's extra, not the package's.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..process import return_freed_memory
from ..version import __version__

log = logging.getLogger(__name__)

#: The folder that holds the `voice2face` package, where a child process finds it; and how long it may trace.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
TRACE_TIMEOUT_S = 300
#: A tracing child's PyTorch computes on one thread: it runs while its parent builds the face graphs and imports
#: Gradio, and with two threads of its own on 2 cores a cold start of the app took 12.3-12.7 s to its first faces
#: in process, with one 10.8-11.0 (each traced in turn, 2026-12-07); the graph it writes is the same.
CHILD_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: A cache folder (named by `cache_key`) that no start has opened for this long is removed (`remove_stale`).
STALE_AFTER_DAYS = 30
CACHE_KEY_NAME = re.compile(r"[0-9a-f]{24}")


def available() -> bool:
    """Whether the openvino package is installed (the web app's extra)."""
    return find_spec("openvino") is not None


def run_compiled(compiled, inputs: list[np.ndarray]) -> torch.Tensor:
    """One call of a compiled graph; a request of its own, since concurrent calls must not share one."""
    request = compiled.create_infer_request()
    request.infer(inputs)
    return torch.from_numpy(request.get_output_tensor(0).data.copy())


def converted(module: nn.Module, example_input, input_shapes: list, freeze: bool = False):
    """`module` traced into an OpenVINO model taking inputs of `input_shapes` (-1: any length there). Traced here, once:
    `ov.convert_model` given the module traces it with torch's check, which runs it again, and a first start waited
    for that (CAM++ 10.5 s to convert against 7.5, the small face graph 4.2 s against 2.4; the same graphs). With
    `freeze`, the trace's weights become constants first, so the converter need not look each one up."""
    import openvino as ov

    with warnings.catch_warnings():  # torch 2.13 marks torch.jit.trace deprecated
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module.eval(), example_input, check_trace=False, strict=False)
        return ov.convert_model(torch.jit.freeze(traced) if freeze else traced, input=input_shapes)


def cache_for(network: nn.Module, cache_dir: str | Path | None, inputs: str = "") -> Path | None:
    """The folder that keeps `network`'s graphs, which take `inputs` (in words), under `cache_dir` (None: no cache, or
    one that cannot be written). Opening it marks it in use, and removes the folders there that no start has opened for
    STALE_AFTER_DAYS."""
    if not cache_dir:
        return None
    folder = writable_cache(Path(cache_dir) / cache_key(network, inputs))
    if folder is not None:
        os.utime(folder)
        remove_stale(Path(cache_dir))
    return folder


def remove_stale(cache_dir: Path, days: float = STALE_AFTER_DAYS) -> None:
    """Remove the folders in `cache_dir` named as `cache_key` names them that were last opened more than `days` ago;
    nothing else there is touched (a library caller may have given any folder)."""
    cutoff = time.time() - days * 86400
    for folder in cache_dir.iterdir():
        if CACHE_KEY_NAME.fullmatch(folder.name) and folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed compiled graphs not used for %d days: %s", days, folder)


def trace_in_child_process(what: str, module: str, *args: str) -> None:
    """Run `python -m module *args` (a module whose main writes the graph of `what`) and log, not raise, if it
    fails: the caller then finds no graph and traces in its own process. The child computes on one thread
    (`CHILD_THREADS`)."""
    try:
        child = subprocess.run([sys.executable, "-m", module, *args], cwd=PACKAGE_ROOT, capture_output=True, text=True,
                               timeout=TRACE_TIMEOUT_S, env={**os.environ, **CHILD_THREADS})  # fmt: skip
        failed = (child.stderr.strip().splitlines() or [f"exit code {child.returncode}"])[-1] if child.returncode else ""
    except (OSError, subprocess.TimeoutExpired) as err:
        failed = str(err)
    if failed:
        log.warning("tracing %s in a child process failed (%s); tracing it here", what, failed)


def compile_cached(cache: Path | None, name: str, build: Callable[[], object], precision: str = "f32"):
    """An OpenVINO graph compiled for the CPU, computing in `precision` ('f32' or 'bf16'): read back from
    `cache / name` (IR, with OpenVINO's compiled blob beside it) where it is there and sound, else built by
    `build()` (a model from `ov.convert_model`), kept there for the next start, and compiled. A damaged cache
    is rebuilt; one that cannot be written is skipped with a log line (compiled again at each start)."""
    import openvino as ov

    core = ov.Core()
    ir = cache / name if cache else None
    compiled = None
    if ir is not None and ir.is_file():
        with contextlib.suppress(OSError):  # still in use (`remove_stale`): a server that has run a month reads back its full-size graph
            os.utime(cache)
        try:
            compiled = core.compile_model(core.read_model(str(ir)), "CPU", compile_config(cache, precision))
        except RuntimeError as err:  # a damaged cache is rebuilt, not trusted
            log.warning("rebuilding the OpenVINO cache at %s (%s)", ir.parent, str(err).splitlines()[0])
    if compiled is None:
        graph = build()
        if ir is not None:
            try:
                ov.save_model(graph, str(ir), compress_to_fp16=False)
            except (RuntimeError, OSError) as err:
                log.warning("could not keep the compiled graph %s in %s (%s); it is compiled again at each start", name, cache, err)
                cache = None
        compiled = core.compile_model(graph, "CPU", compile_config(cache, precision))
        del graph
    return_freed_memory()
    return compiled


def compile_config(cache: Path | None, precision: str) -> dict:
    """The precision asked for as this CPU computes it (`computed_precision`; an int8 graph's other layers in f32),
    and OpenVINO's own compiled blobs kept beside our graphs where there is a cache."""
    computed = computed_precision(precision)
    hint = "f32" if computed == "int8" else computed
    return {"INFERENCE_PRECISION_HINT": hint, **({"CACHE_DIR": str(cache / "compiled")} if cache else {})}


def computed_precision(precision: str) -> str:
    """'f32', 'bf16' or 'int8' as asked, where OpenVINO reports that this CPU computes it (its optimisation
    capabilities: BF16 needs AVX512-BF16 or AMX) and, for int8, where it has 8-bit dot products (`int8_dot_products`);
    else 'f32'."""
    if precision == "int8" and not int8_dot_products():
        return "f32"
    return precision if precision == "f32" or precision.upper() in cpu_capabilities() else "f32"


@lru_cache(maxsize=1)
def int8_dot_products() -> bool:
    """Whether the CPU sums 8-bit products in 32 bits in one instruction (VNNI or AMX, as Linux lists its flags).
    Without it oneDNN's INT8 convs pass through a 16-bit sum that can saturate ("Nuances of int8 computations" in its
    guide), and the INT8 faces were measured with it only; elsewhere (and where the flags cannot be read) f32."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


@lru_cache(maxsize=1)
def cpu_capabilities() -> frozenset[str]:
    """The precisions this CPU computes in its own units, as OpenVINO reports them ('FP32', 'BF16', 'INT8', ...)."""
    import openvino as ov

    return frozenset(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def cache_key(network: nn.Module, inputs: str = "") -> str:
    """A folder name that changes whenever the weights, the architecture, the graphs' inputs or the code that builds
    the graphs does."""
    import openvino as ov

    digest = hashlib.sha256(f"{__version__} {ov.get_version()} {inputs}".encode())
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def writable_cache(folder: Path) -> Path | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        log.warning("no cache for compiled networks at %s (%s); it is compiled at each start", folder, err)
        return None
    return folder if os.access(folder, os.W_OK) else None
