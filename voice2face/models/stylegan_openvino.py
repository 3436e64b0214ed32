"""Our synthesis network compiled by OpenVINO for the CPU: the same faces, faster, and quick to start.

`ov.convert_model` traces `SynthesisNetwork` (our PyTorch module, our weights)
into OpenVINO's graph; it matches PyTorch's faces to about 3e-6. It is for
serving only (no gradients): the web app switches to it when it starts.

- **Two graphs, compiled when needed.** The small head's (256 px), which the
  page draws every face with, is compiled at once; the full 1024-px one only
  when a full-size face is asked for (the download), and let go afterwards
  (`release_full`), so the server neither waits for it at start-up nor holds
  its 330 MB between downloads.
- **A cache on disk.** Each graph is saved as OpenVINO IR under a key made of
  the weights' hash and the versions of voice2face and OpenVINO, and OpenVINO
  keeps its compiled blob beside it (`CACHE_DIR`): a restart reads both back
  instead of tracing and compiling again. A cache that cannot be written is
  skipped with a log line; a damaged one is rebuilt.
- **Noise maps are graph inputs, not constants**: as constants, OpenVINO folded
  each into the bias after it, a channels x size x size map per layer (286 MB
  of constants for 32 MB of weights), and the server held 1.55 GB instead of
  0.95 GB.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..memory import return_freed_memory
from ..version import __version__
from .stylegan import STYLE_DIM, StyledConv, SynthesisNetwork

log = logging.getLogger(__name__)

#: f32: on CPUs with bf16 units OpenVINO would otherwise round activations to bf16.
COMPILE_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


class NoiseAsInputs(nn.Module):
    """The synthesis network (or its small-face path) with its fixed noise maps taken as inputs, for tracing only."""

    def __init__(self, synthesis: SynthesisNetwork, small: bool):
        super().__init__()
        self.synthesis, self.small = synthesis, small
        used = [synthesis.stem, *(synthesis.blocks[:-2] if small else synthesis.blocks)]
        self.convs = [module for part in used for module in part.modules() if isinstance(module, StyledConv)]

    def forward(self, style: torch.Tensor, *noises: torch.Tensor) -> torch.Tensor:
        try:
            for conv, noise in zip(self.convs, noises, strict=True):
                conv.noise_input = noise
            return self.synthesis(style, small=self.small)
        finally:
            for conv in self.convs:
                conv.noise_input = None


class CompiledGraph:
    """One traced and compiled graph, with the noise maps to feed it."""

    def __init__(self, synthesis: SynthesisNetwork, small: bool, cache: Path | None):
        self.noises = noise_maps(NoiseAsInputs(synthesis, small))
        self.compiled = compile_cached(cache, "small.xml" if small else "full.xml", lambda: openvino_graph(synthesis, small)[0])

    def __call__(self, style: torch.Tensor) -> torch.Tensor:
        request = self.compiled.create_infer_request()  # one per call: concurrent requests must not share one
        request.infer([style.detach().float().cpu().numpy(), *self.noises])
        return torch.from_numpy(request.get_output_tensor(0).data.copy())


def compile_cached(cache: Path | None, name: str, build: Callable[[], object]):
    """An OpenVINO graph compiled for the CPU: read back from `cache / name` (IR, with OpenVINO's compiled
    blob beside it) where it is there and sound, else built by `build()` (a model from `ov.convert_model`),
    kept there for the next start, and compiled. A damaged cache is rebuilt; one that cannot be written
    is skipped with a log line (the graph is then compiled again at each start)."""
    import openvino as ov

    core = ov.Core()
    ir = cache / name if cache else None
    compiled = None
    if ir is not None and ir.is_file():
        try:
            compiled = core.compile_model(core.read_model(str(ir)), "CPU", compile_config(cache))
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
        compiled = core.compile_model(graph, "CPU", compile_config(cache))
        del graph
    return_freed_memory()
    return compiled


def compile_config(cache: Path | None) -> dict:
    """f32 throughout, and OpenVINO's own compiled blobs kept beside our graphs where there is a cache."""
    return dict(COMPILE_CONFIG, **({"CACHE_DIR": str(cache / "compiled")} if cache else {}))


def noise_maps(traced: NoiseAsInputs) -> list:
    return [conv.noise.detach().float().contiguous().numpy().copy() for conv in traced.convs]


def openvino_graph(synthesis: SynthesisNetwork, small: bool = False):
    """`synthesis` (or its small-face path) as an OpenVINO model taking (style, *noise maps), and the noise maps to feed it."""
    import openvino as ov

    traced = NoiseAsInputs(synthesis.eval(), small)
    noises = noise_maps(traced)
    example = (torch.zeros(1, STYLE_DIM), *(torch.from_numpy(noise) for noise in noises))
    with warnings.catch_warnings():  # OpenVINO traces with torch.jit.trace, which torch 2.13 marks deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        graph = ov.convert_model(traced, example_input=example, input=[(-1, STYLE_DIM), *(noise.shape for noise in noises)])
    return graph, noises


class OpenVINOSynthesis(nn.Module):
    """Style (B, 512) -> faces (B, 3, S, S) through OpenVINO; `small=True` through the small head's graph."""

    def __init__(self, synthesis: SynthesisNetwork, cache_dir: str | Path | None = None):
        super().__init__()
        self.torch_synthesis = synthesis.float().eval()  # the weights, for the graphs not compiled yet
        self.size, self.small_size = synthesis.size, synthesis.small_size
        self.cache = writable_cache(Path(cache_dir) / cache_key(synthesis)) if cache_dir else None
        self._graphs: dict[bool, CompiledGraph] = {}
        self._lock = threading.Lock()
        self.graph(small=self.small_size is not None)  # the one the page draws with, now

    def graph(self, small: bool) -> CompiledGraph:
        """The compiled graph for small or full faces, compiled on first use (one thread compiles, others wait)."""
        with self._lock:
            if small not in self._graphs:
                self._graphs[small] = CompiledGraph(self.torch_synthesis, small, self.cache)
            return self._graphs[small]

    def release_full(self) -> None:
        """Let the full-size graph go (about 330 MB) when a cache can give it back in about 0.1 s; without
        a cache it is kept, as compiling it again takes seconds. A call drawing with it finishes first."""
        if self.cache is None:
            return
        with self._lock:
            released = self._graphs.pop(False, None)
        if released is not None:
            del released
            return_freed_memory()

    @property
    def compiled(self) -> list[str]:
        """Which graphs are compiled so far: 'small', 'full'."""
        return [("small" if small else "full") for small in self._graphs]

    def forward(self, style: torch.Tensor, small: bool = False) -> torch.Tensor:
        if small and self.small_size is None:
            raise ValueError("this synthesis network has no small head")
        return self.graph(small)(style)


def cache_key(network: nn.Module) -> str:
    """A folder name that changes whenever the weights, the architecture or the code that builds the graphs does."""
    import openvino as ov

    digest = hashlib.sha256(f"{__version__} {ov.get_version()}".encode())
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def writable_cache(folder: Path) -> Path | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        log.warning("no cache for the compiled face network at %s (%s); it is compiled at each start", folder, err)
        return None
    return folder if os.access(folder, os.W_OK) else None
