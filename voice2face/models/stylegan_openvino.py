"""Our synthesis network compiled by OpenVINO for the CPU: the same faces, faster, and quick to start.

`ov.convert_model` traces `SynthesisNetwork` (our PyTorch module, our weights)
into OpenVINO's graph; in f32 it matches PyTorch's faces to about 3e-6. It is for
serving only (no gradients): the web app switches to it when it starts.

- **The full-size graph in bf16 where the CPU has it** (`GRAPH_PRECISION`): 1.35x
  faster a 1024-px face, within 44 dB PSNR of PyTorch's (no judge and no eye tells
  them apart); the page's 256-px faces gained nothing measurable from bf16.
- **The small graph's largest 1x1 convs in INT8** where the CPU computes it: their inputs
  rounded to 256 levels over ranges measured on styles the page can ask for
  (`input_ranges`), their weights to 255 levels per output channel. Traced as
  FakeQuantize nodes, from which OpenVINO computes the convs in INT8.

- **One face a call, every shape fixed** (`openvino_graph`): a graph that took any number of
  faces drew a 256-px face 1.38x slower (60 against 44 ms, in turn), a 1024-px one 1.72x, the
  page's whole request 1.21x; the same faces, to the bit in f32 and INT8. A batch is drawn a
  face at a time.
- **Each channel's wavelet bands side by side** (`stylegan.interleaved_bands`): traced from
  MobileStyleGAN's order, the graph split the coefficients with a slow reference kernel before
  two transposed convs, and drew a 1024-px face 1.85x slower (141 against 76 ms), a 256-px one
  1.12x, the page's request 1.06x. The same faces to 5e-7 in f32; against PyTorch, 234 held-out
  faces: 256 px 35.0 dB or more (as before), 1024 px in bf16 44.4 dB or more (44.5 before).
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
  0.95 GB. Held in the 256-px graph alone they draw its faces 1.12-1.18x faster (an
  input map, added to every channel of a pixel, is added in another memory layout
  than the convs', with a reorder there and back; only the 128-px layers' maps
  matter), but a server rests 145 MiB larger and the cache holds 160 MB more
  (2026-12-07): not done.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import torch
from torch import nn

from ..process import return_freed_memory
from .openvino import cache_for, compile_cached, computed_precision, converted, run_compiled
from .stylegan import STYLE_DIM, StyledConv, SynthesisNetwork, interleaved_bands

#: How each face graph computes where the CPU has bf16 units (elsewhere f32: `openvino.compile_config`). On 2 cores
#: with AVX512-BF16, each face drawn in turn both ways in one run (`benchmarks/bench_inference.py`): a 1024-px face
#: 1.34-1.43x faster in bf16 (200-215 ms against 269-293, four runs), which the full-size download draws five of; a
#: 256-px face, the page's, 1.02-1.10x (72-78 against 76-80 ms: within the machine's noise), so the page's faces
#: stay in f32, the library's to 81 dB. The full-size graph in bf16 against PyTorch's f32, 234 faces of 74 held-out
#: labelled voices: PSNR 44.5 dB at the least (median 50.2), the same judged gender for all, an age within 3 years
#: for 98% (`benchmarks/bench_served_faces.py --full-size`).
#: The small graph computes its largest 1x1 convs in INT8 ("int8": the convs of INT8_MIN_MULTIPLY_ADDS and more, the rest
#: in f32; only with styles to measure their inputs on, else f32). On 2 cores with AVX512-VNNI, drawn in turn with the
#: f32 graph (`benchmarks/bench_inference.py`): a 256-px face 1.19-1.34x faster (108 against 129 ms), the page's whole
#: request 1.14x. Against PyTorch's f32, 234 faces of 74 held-out labelled voices (`benchmarks/bench_served_faces.py`):
#: PSNR 35.0 dB at the least (median 41.7), the same judged gender for all, an age within 3 years for 95%. NNCF's
#: quantisation of every conv was 1.31x faster, but 21 dB at the least; the measuring costs a first start 2 s.
GRAPH_PRECISION = {"small": "int8", "full": "bf16"}
#: An int8 graph computes a 1x1 conv in INT8 when it does at least this many multiply-adds a face: in the small graph,
#: the 64-px block's second and the 128-px block's two, 2.7 of its 4.1 G multiply-adds.
INT8_MIN_MULTIPLY_ADDS = 2**29

#: What the graphs take and how they are laid out, part of their cache key: graphs kept by a version that took other
#: inputs (one style for both layers, any number of styles) or kept MobileStyleGAN's order of bands are not read back.
GRAPH_LAYOUT = "one style, one fine style, noise maps; bands interleaved, each inverse a 1x1 conv and a shuffle"


class NoiseAsInputs(nn.Module):
    """The synthesis network (or its small-face path) with its fixed noise maps taken as inputs, and the 1x1 convs of
    `rounding` rounded as INT8 computes them, for tracing only."""

    def __init__(self, synthesis: SynthesisNetwork, small: bool, rounding: dict[StyledConv, "Int8Rounding"] | None = None):
        super().__init__()
        self.synthesis, self.small, self.rounding = synthesis, small, rounding or {}
        self.convs = styled_convs(synthesis, small)

    def forward(self, style: torch.Tensor, fine: torch.Tensor, *noises: torch.Tensor) -> torch.Tensor:
        try:
            for conv, noise in zip(self.convs, noises, strict=True):
                conv.noise_input, conv.pointwise_hook = noise, self.rounding.get(conv)
            return self.synthesis(style, small=self.small, fine=fine)
        finally:
            for conv in self.convs:
                conv.noise_input = conv.pointwise_hook = None


def styled_convs(synthesis: SynthesisNetwork, small: bool) -> list[StyledConv]:
    """The styled convs that the small-face path (or the full network) runs, in order."""
    used = [synthesis.stem, *synthesis.blocks[: synthesis.blocks_drawn(small)]]
    return [module for part in used for module in part.modules() if isinstance(module, StyledConv)]


def int8_convs(synthesis: SynthesisNetwork, small: bool) -> list[StyledConv]:
    """The styled convs whose 1x1 conv an int8 graph computes in INT8: those of INT8_MIN_MULTIPLY_ADDS and more a face."""
    return [conv for conv in styled_convs(synthesis, small) if conv.weight_dw is not None and pointwise_multiply_adds(conv) >= INT8_MIN_MULTIPLY_ADDS]


def pointwise_multiply_adds(conv: StyledConv) -> int:
    """Multiply-adds of a styled conv's 1x1 conv for one face."""
    return conv.weight.shape[0] * conv.weight.shape[1] * conv.noise.shape[-1] ** 2


class Int8Rounding:
    """A 1x1 conv's input rounded to 256 levels over `low`..`high` (widened to hold 0) and its weights to 255 levels per
    output channel: traced, the input's FakeQuantize node (the weights, constants, are traced already rounded) from
    which OpenVINO computes the conv in INT8."""

    def __init__(self, low: float, high: float):
        low, high = min(low, 0.0), max(high, 0.0)
        self.step = max(high - low, 1e-6) / 255
        self.zero_level = round(-low / self.step)

    def __call__(self, x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.fake_quantize_per_tensor_affine(x, self.step, self.zero_level, 0, 255)
        steps = weight.detach().abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / 127
        zeros = torch.zeros(len(steps), dtype=torch.int32)
        return x, torch.fake_quantize_per_channel_affine(weight, steps, zeros, 0, -127, 127)


#: Each 1x1 input's INT8 range is this share of the mean of each calibration face's least and greatest input (see
#: `input_ranges`). Chosen on training speakers' faces (200 speakers, and 80 of their faces at the sliders' ends), the
#: least PSNR against f32 by share 1.0 / 0.9 / 0.8 / 0.7 / 0.6 / 0.5: voices 33.9 / 34.8 / 35.8 / 37.0 / 38.0 / 36.4 dB,
#: sliders 32.4 / 33.4 / 34.5 / 35.0 / 33.9 / 32.5.
RANGE_SHARE = 0.7


def input_ranges(synthesis: SynthesisNetwork, convs: list[StyledConv], small: bool, styles: torch.Tensor,
                 fines: torch.Tensor) -> list[tuple[float, float]]:  # fmt: skip
    """Each conv's 1x1 input range for INT8, measured on the faces of `styles` (and `fines`): RANGE_SHARE of the mean of
    each face's least input and of its greatest. A few outlying values are clipped rather than every value rounded
    coarser: the extremes over all faces gave 30.9 dB at the least against f32 on 200 held-out faces."""
    seen: dict[StyledConv, list[torch.Tensor]] = {conv: [] for conv in convs}

    def observer(conv: StyledConv):
        def observe(x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            seen[conv].append(torch.stack([x.amin(dim=(1, 2, 3)), x.amax(dim=(1, 2, 3))], dim=1))
            return x, weight

        return observe

    try:
        for conv in convs:
            conv.pointwise_hook = observer(conv)
        with torch.inference_mode():
            for start in range(0, len(styles), 4):
                synthesis.features(styles[start : start + 4], synthesis.blocks_drawn(small), fines[start : start + 4])
    finally:
        for conv in convs:
            conv.pointwise_hook = None
    return [tuple((RANGE_SHARE * torch.cat(seen[conv]).mean(dim=0)).tolist()) for conv in convs]


class CompiledGraph:
    """One traced and compiled graph, with the noise maps to feed it; an int8 graph's convs rounded over ranges measured
    on `calibration` (styles, fine styles), and computed in f32 without them."""

    def __init__(self, synthesis: SynthesisNetwork, small: bool, cache: Path | None, precision: str,
                 calibration: tuple[torch.Tensor, torch.Tensor] | None = None):  # fmt: skip
        self.noises = noise_maps(NoiseAsInputs(synthesis, small))
        precision = precision if precision != "int8" or calibration is not None else "f32"
        self.int8 = computed_precision(precision) == "int8"
        name = f"{graph_name(small)}-int8-{styles_digest(*calibration)}.xml" if self.int8 else f"{graph_name(small)}.xml"
        build = lambda: openvino_graph(synthesis, small, calibration if self.int8 else None)[0]  # noqa: E731
        self.compiled = compile_cached(cache, name, build, precision)

    def __call__(self, style: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        """Faces for styles (B, 512), one call a face: the graph takes one (`openvino_graph`)."""
        return torch.cat([run_compiled(self.compiled, [style_array(style[k : k + 1]), style_array(fine[k : k + 1]), *self.noises])
                          for k in range(len(style))])  # fmt: skip


def graph_name(small: bool) -> str:
    return "small" if small else "full"


def style_array(style: torch.Tensor):
    return style.detach().float().cpu().numpy()


def noise_maps(traced: NoiseAsInputs) -> list:
    return [conv.noise.detach().float().contiguous().numpy().copy() for conv in traced.convs]


def styles_digest(styles: torch.Tensor, fines: torch.Tensor) -> str:
    """A short hash of calibration styles, part of an int8 graph's name in the cache."""
    digest = hashlib.sha256(style_array(styles).tobytes())
    digest.update(style_array(fines).tobytes())
    return digest.hexdigest()[:12]


def openvino_graph(synthesis: SynthesisNetwork, small: bool = False, calibration: tuple[torch.Tensor, torch.Tensor] | None = None):
    """`synthesis` (or its small-face path) as an OpenVINO model taking (style, fine style, *noise maps) for one face,
    and the noise maps to feed it; with `calibration` (styles, fine styles), its `int8_convs` rounded over ranges
    measured on them. One face, not any number: with every shape fixed OpenVINO drew a 256-px face 1.26-1.48x faster
    (in turn, five runs), the same to the bit in f32 and INT8 (`benchmarks/bench_inference.py`); the server draws one
    face a call anyway. Traced from `interleaved_bands(synthesis)`: the same faces, with no split before each inverse
    wavelet transform."""
    synthesis = interleaved_bands(synthesis.eval())
    rounding = None
    if calibration is not None:
        convs = int8_convs(synthesis, small)
        rounding = {conv: Int8Rounding(*span) for conv, span in zip(convs, input_ranges(synthesis, convs, small, *calibration), strict=True)}
    traced = NoiseAsInputs(synthesis, small, rounding)
    noises = noise_maps(traced)
    example = (torch.zeros(1, STYLE_DIM), torch.zeros(1, STYLE_DIM), *(torch.from_numpy(noise) for noise in noises))
    return converted(traced, example, [(1, STYLE_DIM), (1, STYLE_DIM), *(noise.shape for noise in noises)]), noises


class OpenVINOSynthesis(nn.Module):
    """Style (B, 512), and the fine layers' if not the same -> faces (B, 3, S, S) through OpenVINO; `small=True` through
    the small head's graph; each graph computes in `precision` if given, else as GRAPH_PRECISION says. An int8 graph
    measures its convs' inputs on `calibration` (styles, fine styles: faces like those it will draw); without them it
    computes in f32."""

    def __init__(self, synthesis: SynthesisNetwork, cache_dir: str | Path | None = None, precision: str | None = None,
                 calibration: tuple[torch.Tensor, torch.Tensor] | None = None):  # fmt: skip
        super().__init__()
        self.precision = {graph: precision or shipped for graph, shipped in GRAPH_PRECISION.items()}
        self.calibration = calibration
        self.torch_synthesis = synthesis.float().eval()  # the weights, for the graphs not compiled yet
        self.size, self.small_size = synthesis.size, synthesis.small_size
        self.cache = cache_for(synthesis, cache_dir, GRAPH_LAYOUT)
        self._graphs: dict[bool, CompiledGraph] = {}
        self._lock = threading.Lock()
        self.graph(small=self.small_size is not None)  # the one the page draws with, now

    def graph(self, small: bool) -> CompiledGraph:
        """The compiled graph for small or full faces, compiled on first use (one thread compiles, others wait)."""
        with self._lock:
            if small not in self._graphs:
                self._graphs[small] = CompiledGraph(self.torch_synthesis, small, self.cache, self.precision[graph_name(small)],
                                                    self.calibration)  # fmt: skip
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
