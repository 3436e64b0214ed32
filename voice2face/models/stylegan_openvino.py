"""Our synthesis network compiled by OpenVINO for the CPU: the same faces, 2.4x faster each.

`ov.convert_model` traces `SynthesisNetwork` (our PyTorch module, our weights)
into OpenVINO's graph once, at start-up (about 5 s on 2 cores); after that a
1024-px face takes about 0.16 s instead of 0.38 s in PyTorch on this machine
(benchmarks/bench_inference.py), and matches PyTorch's to about 3e-5. It is
for serving only (no gradients): the web app switches to it when it starts.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .stylegan import STYLE_DIM, SynthesisNetwork


class OpenVINOSynthesis(nn.Module):
    """Style (B, 512) -> faces (B, 3, S, S), through OpenVINO."""

    def __init__(self, synthesis: SynthesisNetwork):
        super().__init__()
        import openvino as ov

        with warnings.catch_warnings():  # OpenVINO traces with torch.jit.trace, which torch 2.13 marks deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            graph = ov.convert_model(synthesis.eval(), example_input=torch.zeros(1, STYLE_DIM), input=[(-1, STYLE_DIM)])
        # f32: on CPUs with bf16 units OpenVINO would otherwise round activations to bf16
        self.compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        request = self.compiled.create_infer_request()  # one per call: concurrent requests must not share one
        request.infer({0: style.detach().float().cpu().numpy()})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())
