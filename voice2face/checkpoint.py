"""Checkpoints: a directory with `config.json` and one safetensors file per network.

config.json holds the model and front-end configs, what the model was trained
on, the training steps and the code version, so a checkpoint can be rebuilt
and judged without the code that made it. Weights are safetensors (no pickle,
no device baked in); optimiser state for resuming lives in `training_state.pt`,
read with `weights_only=True` and mapped to the CPU.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .audio import FrontEndConfig
from .errors import CheckpointError
from .models import ModelConfig

CONFIG_FILE = "config.json"
TRAINING_STATE_FILE = "training_state.pt"
FORMAT_VERSION = 1


@dataclass
class CheckpointInfo:
    """The contents of config.json."""

    model: ModelConfig = field(default_factory=ModelConfig)
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    trained_on: str = "nothing (random init)"
    training: dict[str, Any] = field(default_factory=dict)  # stage, steps, seed, data, ...
    code_version: str = __version__
    weights_dtype: str = "float32"
    format_version: int = FORMAT_VERSION


def weights_file(name: str) -> str:
    return f"{name}.safetensors"


def save_checkpoint(
    path: str | Path,
    info: CheckpointInfo,
    networks: Mapping[str, nn.Module],
    dtype: torch.dtype = torch.float32,
    training_state: dict | None = None,
) -> Path:
    """Write `networks` (name -> module) and `info` to the directory `path`.

    Floating-point weights are stored as `dtype` (float16 halves the size of a
    shipped model); they are cast back to float32 on load. Files are written
    under temporary names and renamed, so a kill mid-save never leaves a
    half-written checkpoint behind.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    info = dataclasses.replace(info, code_version=__version__, weights_dtype=str(dtype).removeprefix("torch."))
    for name, module in networks.items():
        tensors = {
            k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in module.state_dict().items()
        }
        _atomic(path / weights_file(name), lambda tmp: save_file(tensors, str(tmp)))
    if training_state is not None:
        _atomic(path / TRAINING_STATE_FILE, lambda tmp: torch.save(training_state, tmp))
    text = json.dumps(_to_json(info), indent=2) + "\n"
    _atomic(path / CONFIG_FILE, lambda tmp: tmp.write_text(text))
    return path


def _atomic(target: Path, write) -> None:
    tmp = target.with_name(target.name + ".tmp")
    write(tmp)
    tmp.replace(target)


def read_info(path: str | Path) -> CheckpointInfo:
    """Parse `path/config.json`, with a clear error for anything missing or malformed."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(
            f"No checkpoint directory at {path}. Pass --checkpoint with a directory holding "
            f"{CONFIG_FILE} and *.safetensors (see checkpoints/ and the README)."
        )
    config = path / CONFIG_FILE
    if not config.is_file():
        raise CheckpointError(f"{path} is not a voice2face checkpoint: it has no {CONFIG_FILE}.")
    try:
        raw = json.loads(config.read_text())
        info = _from_json(CheckpointInfo, raw)
    except (json.JSONDecodeError, TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{config} is damaged or from an incompatible version: {err}") from None
    if info.format_version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer voice2face (format {info.format_version}); "
            f"this one reads format {FORMAT_VERSION}. Upgrade voice2face."
        )
    return info


def load_weights(path: str | Path, name: str, module: nn.Module) -> nn.Module:
    """Fill `module` from `path/<name>.safetensors`, checking every name and shape first."""
    file = Path(path) / weights_file(name)
    if not file.is_file():
        raise CheckpointError(f"The checkpoint {path} has no {file.name}; it is incomplete.")
    try:
        tensors = load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is truncated or corrupt ({err}). Re-copy or re-create the checkpoint.") from None
    expected = module.state_dict()
    problems = [f"missing {k}" for k in expected if k not in tensors]
    problems += [f"unexpected {k}" for k in tensors if k not in expected]
    problems += [
        f"{k}: file has {tuple(tensors[k].shape)}, config builds {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointError(f"{file} does not match the architecture in {CONFIG_FILE}: {shown}.")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return module


def load_training_state(path: str | Path) -> dict | None:
    """Optimiser and step state for resuming, or None if the checkpoint has none."""
    file = Path(path) / TRAINING_STATE_FILE
    if not file.is_file():
        return None
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{file} is truncated or corrupt ({err}).") from None


# --------------------------------------------------------------------------- dataclass <-> JSON


def _to_json(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_json(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_json(v) for k, v in obj.items()}
    return obj


def _from_json(cls: type, data: Any) -> Any:
    """Build dataclass `cls` from parsed JSON, refusing unknown keys (a sign of a mismatch)."""
    if not isinstance(data, dict):
        raise TypeError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise KeyError(f"unknown field(s) {sorted(unknown)} in {cls.__name__}")
    return cls(**{k: _convert(hints[k], v) for k, v in data.items()})


def _convert(hint: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        return _from_json(hint, value)
    if typing.get_origin(hint) is tuple:
        return tuple(value)
    return value
