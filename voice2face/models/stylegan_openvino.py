"""Our synthesis network compiled by OpenVINO for the CPU: the same faces, faster, and quick to start.

`ov.convert_model` traces `SynthesisNetwork` (our PyTorch module, our weights)
into OpenVINO's graph; in f32 it matches PyTorch's faces to about 3e-6. It is for
serving only (no gradients): the web app switches to it when it starts.

- **The full-size graph in bf16 where the CPU has it** (`GRAPH_PRECISION`): 1.35x
  faster a 1024-px face, within 44 dB PSNR of PyTorch's (no judge and no eye tells
  them apart); the page's 256-px faces gained nothing measurable, and stay f32.

- **Two graphs, compiled when needed.** The small head's (256 px), which the
  page draws every face with, is compiled at once; the full 1024-px one only
  when a full-size face is asked for (the download), and let go afterwards
  (`release_full`), so the server neither waits for it at start-up nor holds
  its 330 MB between downloads.
- **A cache on disk** (`models/openvino.py`): a restart reads both graphs back
  instead of tracing and compiling again.
- **Noise maps are graph inputs, not constants**: as constants, OpenVINO folded
  each into the bias after it, a channels x size x size map per layer (286 MB
  of constants for 32 MB of weights), and the server held 1.55 GB instead of
  0.95 GB.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from torch import nn

from ..memory import return_freed_memory
from .openvino import cache_for, compile_cached, converted, run_compiled
from .stylegan import STYLE_DIM, StyledConv, SynthesisNetwork

#: How each face graph computes where the CPU has bf16 units (elsewhere f32: `openvino.compile_config`). On 2 cores
#: with AVX512-BF16, each face drawn in turn both ways in one run (`benchmarks/bench_inference.py`): a 1024-px face
#: 1.34-1.43x faster in bf16 (200-215 ms against 269-293, four runs), which the full-size download draws five of; a
#: 256-px face, the page's, 1.02-1.10x (72-78 against 76-80 ms: within the machine's noise), so the page's faces
#: stay in f32, the library's to 81 dB. The full-size graph in bf16 against PyTorch's f32, 234 faces of 74 held-out
#: labelled voices: PSNR 44.5 dB at the least (median 50.2), the same judged gender for all, an age within 3 years
#: for 98% (`benchmarks/bench_served_faces.py --full-size`).
GRAPH_PRECISION = {"small": "f32", "full": "bf16"}

#: What the graphs take, part of their cache key: graphs kept by a version that took one style are not read back.
GRAPH_INPUTS = "style, fine style, noise maps"


class NoiseAsInputs(nn.Module):
    """The synthesis network (or its small-face path) with its fixed noise maps taken as inputs, for tracing only."""

    def __init__(self, synthesis: SynthesisNetwork, small: bool):
        super().__init__()
        self.synthesis, self.small = synthesis, small
        used = [synthesis.stem, *(synthesis.blocks[:-2] if small else synthesis.blocks)]
        self.convs = [module for part in used for module in part.modules() if isinstance(module, StyledConv)]

    def forward(self, style: torch.Tensor, fine: torch.Tensor, *noises: torch.Tensor) -> torch.Tensor:
        try:
            for conv, noise in zip(self.convs, noises, strict=True):
                conv.noise_input = noise
            return self.synthesis(style, small=self.small, fine=fine)
        finally:
            for conv in self.convs:
                conv.noise_input = None


class CompiledGraph:
    """One traced and compiled graph, with the noise maps to feed it."""

    def __init__(self, synthesis: SynthesisNetwork, small: bool, cache: Path | None, precision: str):
        self.noises = noise_maps(NoiseAsInputs(synthesis, small))
        self.compiled = compile_cached(cache, f"{graph_name(small)}.xml", lambda: openvino_graph(synthesis, small)[0],
                                      precision)  # fmt: skip

    def __call__(self, style: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        return run_compiled(self.compiled, [style_array(style), style_array(fine), *self.noises])


def graph_name(small: bool) -> str:
    return "small" if small else "full"


def style_array(style: torch.Tensor):
    return style.detach().float().cpu().numpy()


def noise_maps(traced: NoiseAsInputs) -> list:
    return [conv.noise.detach().float().contiguous().numpy().copy() for conv in traced.convs]


def openvino_graph(synthesis: SynthesisNetwork, small: bool = False):
    """`synthesis` (or its small-face path) as an OpenVINO model taking (style, fine style, *noise maps), and the noise
    maps to feed it."""
    traced = NoiseAsInputs(synthesis.eval(), small)
    noises = noise_maps(traced)
    example = (torch.zeros(1, STYLE_DIM), torch.zeros(1, STYLE_DIM), *(torch.from_numpy(noise) for noise in noises))
    return converted(traced, example, [(-1, STYLE_DIM), (-1, STYLE_DIM), *(noise.shape for noise in noises)]), noises


class OpenVINOSynthesis(nn.Module):
    """Style (B, 512), and the fine layers' if not the same -> faces (B, 3, S, S) through OpenVINO; `small=True` through
    the small head's graph; each graph computes in `precision` if given, else as GRAPH_PRECISION says."""

    def __init__(self, synthesis: SynthesisNetwork, cache_dir: str | Path | None = None, precision: str | None = None):
        super().__init__()
        self.precision = {graph: precision or shipped for graph, shipped in GRAPH_PRECISION.items()}
        self.torch_synthesis = synthesis.float().eval()  # the weights, for the graphs not compiled yet
        self.size, self.small_size = synthesis.size, synthesis.small_size
        self.cache = cache_for(synthesis, cache_dir, GRAPH_INPUTS)
        self._graphs: dict[bool, CompiledGraph] = {}
        self._lock = threading.Lock()
        self.graph(small=self.small_size is not None)  # the one the page draws with, now

    def graph(self, small: bool) -> CompiledGraph:
        """The compiled graph for small or full faces, compiled on first use (one thread compiles, others wait)."""
        with self._lock:
            if small not in self._graphs:
                self._graphs[small] = CompiledGraph(self.torch_synthesis, small, self.cache, self.precision[graph_name(small)])
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
        return [graph_name(small) for small in self._graphs]

    def forward(self, style: torch.Tensor, small: bool = False, fine: torch.Tensor | None = None) -> torch.Tensor:
        if small and self.small_size is None:
            raise ValueError("this synthesis network has no small head")
        return self.graph(small)(style, style if fine is None else fine)
