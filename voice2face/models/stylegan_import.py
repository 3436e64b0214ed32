"""Read MobileStyleGAN's weights out of the `random-face` wheel's OpenVINO files, into our modules.

The wheel (2021.7.21.1, Apache-2.0 code; weights distilled from NVIDIA's
StyleGAN2-FFHQ, non-commercial) ships the two networks as OpenVINO IR: an XML
graph and a flat binary of constants. We read both with the standard library
and numpy (no OpenVINO needed), and find each constant by its name or by its
place in the graph. This runs once, when a face-space checkpoint is made.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch

from ..errors import Voice2FaceError
from .stylegan import MappingNetwork, SynthesisNetwork

RANDOM_FACE_PIN = "random-face==2021.7.21.1"
_DTYPES = {"f32": np.float32, "f16": np.float16, "i64": np.int64, "i32": np.int32}


def packaged_ir_dir() -> Path:
    """The folder of `MappingNetwork.xml` and `SynthesisNetwork.xml` inside the installed wheel."""
    spec = find_spec("random_face")
    if spec is None or not spec.submodule_search_locations:
        raise Voice2FaceError(
            f"MobileStyleGAN's weights come from the random-face wheel: pip install --no-deps {RANDOM_FACE_PIN} "
            "(--no-deps: it declares jupyter, opencv and gdown, which voice2face does not need)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@dataclass
class IRGraph:
    """The layers of one IR file, its edges, and its constants' values."""

    layers: dict[str, ET.Element]
    inputs: dict[str, list[str]]  # layer id -> producer ids, by input port
    consumers: dict[str, list[str]]
    blob: bytes

    @classmethod
    def read(cls, xml_path: Path) -> "IRGraph":
        root = ET.parse(xml_path).getroot()
        layers = {layer.get("id"): layer for layer in root.find("layers")}
        ports: dict[str, dict[int, str]] = {}
        consumers: dict[str, list[str]] = {}
        for edge in root.find("edges"):
            source, target = edge.get("from-layer"), edge.get("to-layer")
            ports.setdefault(target, {})[int(edge.get("to-port"))] = source
            consumers.setdefault(source, []).append(target)
        inputs = {lid: [p[k] for k in sorted(p)] for lid, p in ports.items()}
        return cls(layers, inputs, consumers, xml_path.with_suffix(".bin").read_bytes())

    def type(self, lid: str) -> str:
        return self.layers[lid].get("type")

    def value(self, lid: str) -> np.ndarray:
        data = self.layers[lid].find("data")
        shape = [int(s) for s in data.get("shape").split(",") if s.strip()]
        offset, size = int(data.get("offset")), int(data.get("size"))
        return np.frombuffer(self.blob[offset : offset + size], dtype=_DTYPES[data.get("element_type")]).reshape(shape).copy()

    def named(self) -> dict[str, str]:
        """Constant name -> layer id."""
        return {layer.get("name"): lid for lid, layer in self.layers.items() if layer.get("type") == "Const"}

    def constants_of(self, op_type: str) -> list[np.ndarray]:
        """The constant input of each `op_type` layer, in graph order."""
        found = []
        for lid in sorted(self.layers, key=int):
            if self.type(lid) == op_type:
                found += [self.value(i) for i in self.inputs[lid] if self.type(i) == "Const"]
        return found


def mapping_state(graph: IRGraph) -> dict[str, torch.Tensor]:
    """Our `MappingNetwork`'s state: each MatMul's weight and the bias added after it."""
    weights = graph.constants_of("MatMul")
    biases = [graph.value(lid) for lid in sorted(graph.layers, key=int)
              if graph.type(lid) == "Const" and graph.value(lid).shape == (weights[0].shape[0],)]  # fmt: skip
    if len(weights) != len(biases):
        raise Voice2FaceError(f"Unexpected MappingNetwork IR: {len(weights)} weights, {len(biases)} biases.")
    state = {}
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        state[f"layers.{i}.weight"], state[f"layers.{i}.bias"] = torch.from_numpy(w), torch.from_numpy(b)
    return state


def _conv_and_noise(graph: IRGraph, bias_id: str) -> tuple[np.ndarray, np.ndarray]:
    """From a styled conv's bias constant, back through `conv + noise + bias`: the folded weight and the noise map."""
    (add_bias,) = graph.consumers[bias_id]
    add_noise = next(i for i in graph.inputs[add_bias] if i != bias_id)
    conv, noise = sorted(graph.inputs[add_noise], key=lambda i: graph.type(i) == "Const")
    weight = next(i for i in graph.inputs[conv] if graph.type(i) == "Const")
    return graph.value(weight), graph.value(noise)


def synthesis_state(graph: IRGraph) -> dict[str, torch.Tensor]:
    """Our `SynthesisNetwork`'s state, by the names the exporter kept (`m.layers.3.conv1.bias`, ...)."""
    state: dict[str, np.ndarray] = {}

    def styled_conv(ours: str, theirs: str) -> None:
        state[f"{ours}.modulation.weight"] = graph.value(named[f"{theirs}.conv.modulation.weight"])
        state[f"{ours}.modulation.bias"] = graph.value(named[f"{theirs}.conv.modulation.bias"]).reshape(-1)
        state[f"{ours}.bias"] = graph.value(named[f"{theirs}.bias"])
        state[f"{ours}.weight"], state[f"{ours}.noise"] = _conv_and_noise(graph, named[f"{theirs}.bias"])
        if f"{theirs}.conv.weight_dw" in named:
            dw = graph.value(named[f"{theirs}.conv.weight_dw"])
            state[f"{ours}.weight_dw"] = dw.reshape(dw.shape[0], 1, 3, 3)

    named = graph.named()
    blocks = sorted({int(m.group(1)) for n in named if (m := re.match(r"m\.layers\.(\d+)\.", n))})
    state["input"] = graph.value(named["m.input.input"])
    styled_conv("stem", "m.conv1")
    for i in blocks:
        state[f"blocks.{i}.up_modulation.weight"] = graph.value(named[f"m.layers.{i}.up.modulation.weight"])
        state[f"blocks.{i}.up_modulation.bias"] = graph.value(named[f"m.layers.{i}.up.modulation.bias"]).reshape(-1)
        styled_conv(f"blocks.{i}.conv1", f"m.layers.{i}.conv1")
        styled_conv(f"blocks.{i}.conv2", f"m.layers.{i}.conv2")
    last = f"m.layers.{blocks[-1]}.to_img"
    state["to_wavelets_modulation.weight"] = graph.value(named[f"{last}.conv.modulation.weight"])
    state["to_wavelets_modulation.bias"] = graph.value(named[f"{last}.conv.modulation.bias"]).reshape(-1)
    state["to_wavelets"] = graph.value(named[f"{last}.conv.weight"])
    state["to_wavelets_bias"] = graph.value(named[f"{last}.bias"])
    return {k: torch.from_numpy(v.astype(np.float32)) for k, v in state.items()}


def load_mobile_stylegan(ir_dir: Path | None = None) -> tuple[MappingNetwork, SynthesisNetwork]:
    """Both networks with the packaged weights (strict: every tensor named and shaped as ours)."""
    ir_dir = ir_dir or packaged_ir_dir()
    mapping, synthesis = MappingNetwork(), SynthesisNetwork()
    mapping.load_state_dict(mapping_state(IRGraph.read(ir_dir / "MappingNetwork.xml")))
    synthesis.load_state_dict(synthesis_state(IRGraph.read(ir_dir / "SynthesisNetwork.xml")))
    return mapping.eval(), synthesis.eval()
