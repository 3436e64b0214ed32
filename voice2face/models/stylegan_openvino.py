"""Our synthesis network compiled by OpenVINO for the CPU: the same faces, 1.3x faster each.

`ov.convert_model` traces `SynthesisNetwork` (our PyTorch module, our weights)
into OpenVINO's graph once, at start-up (about 5 s on 2 cores); after that a
1024-px face takes about 0.30 s instead of 0.39 s in PyTorch on this machine
(benchmarks/bench_inference.py), and matches PyTorch's to about 3e-6. It is
for serving only (no gradients): the web app switches to it when it starts.

The fixed noise maps are inputs of the graph, not constants: as constants,
OpenVINO folded each into the bias after it, a channels x size x size map per
layer (286 MB of constants for 32 MB of weights), and the server held 1.55 GB
instead of 0.95 GB. Folded, a face took 0.18 s: memory a shared server cannot
spare, for 0.1 s a face.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..memory import return_freed_memory
from .stylegan import STYLE_DIM, StyledConv, SynthesisNetwork


class NoiseAsInputs(nn.Module):
    """The synthesis network with its fixed noise maps taken as inputs, for tracing only (see above)."""

    def __init__(self, synthesis: SynthesisNetwork):
        super().__init__()
        self.synthesis = synthesis
        self.convs = [module for module in synthesis.modules() if isinstance(module, StyledConv)]

    def forward(self, style: torch.Tensor, *noises: torch.Tensor) -> torch.Tensor:
        try:
            for conv, noise in zip(self.convs, noises, strict=True):
                conv.noise_input = noise
            return self.synthesis(style)
        finally:
            for conv in self.convs:
                conv.noise_input = None


class OpenVINOSynthesis(nn.Module):
    """Style (B, 512) -> faces (B, 3, S, S), through OpenVINO."""

    def __init__(self, synthesis: SynthesisNetwork):
        super().__init__()
        import openvino as ov

        graph, self.noises = openvino_graph(synthesis)
        # f32: on CPUs with bf16 units OpenVINO would otherwise round activations to bf16
        self.compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        del graph
        return_freed_memory()

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        request = self.compiled.create_infer_request()  # one per call: concurrent requests must not share one
        request.infer([style.detach().float().cpu().numpy(), *self.noises])
        return torch.from_numpy(request.get_output_tensor(0).data.copy())


def openvino_graph(synthesis: SynthesisNetwork):
    """`synthesis` as an OpenVINO model taking (style, *noise maps), and the noise maps to feed it."""
    import openvino as ov

    traced = NoiseAsInputs(synthesis.eval())
    noises = [conv.noise.detach().numpy().copy() for conv in traced.convs]
    example = (torch.zeros(1, STYLE_DIM), *(torch.from_numpy(noise) for noise in noises))
    with warnings.catch_warnings():  # OpenVINO traces with torch.jit.trace, which torch 2.13 marks deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        graph = ov.convert_model(traced, example_input=example, input=[(-1, STYLE_DIM), *(noise.shape for noise in noises)])
    return graph, noises

