"""Checkpoints: a directory with `config.json` and one safetensors file per network.

config.json holds what kind of checkpoint it is and which networks it holds,
the model and front-end configs, what the model was trained on, the training
steps and the code version, so a checkpoint can be rebuilt and judged without
the code that made it. Every config is checked before any network is built. Weights are safetensors (no pickle,
no device baked in); optimiser state for resuming lives in `training_state.pt`,
read with `weights_only=True` and mapped to the CPU.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .audio.front_end import FrontEndConfig, check_front_end
from .errors import CheckpointError
from .models import (
    Discriminator,
    FaceAttributeNet,
    FaceDecoder,
    FaceDiscriminator,
    FaceEmbedder,
    FaceSpaceDirections,
    IdentityClassifier,
    MappingNetwork,
    ModelConfig,
    SynthesisNetwork,
    build_generator,
    build_voice_encoder,
    check_model_config,
)
from .version import __version__

CONFIG_FILE = "config.json"
TRAINING_STATE_FILE = "training_state.pt"
FORMAT_VERSION = 2
#: A config.json larger than this is not one (ours are a few KB).
MAX_CONFIG_BYTES = 1 << 20
#: Weights a checkpoint's network may hold (the default model's largest: 9 M), checked before building it.
MAX_PARAMETERS = 200_000_000
#: Larger weights are damage, not training (the shipped checkpoints' largest is 61).
MAX_WEIGHT = 1e4

#: What a checkpoint is for, and so which code reads it.
KINDS = {
    "voice-to-face": "a voice encoder and a face generator: what Voice2Face.from_pretrained loads",
    "voice-encoder": "a voice encoder alone (speaker-recognition pre-training, or the packaged GE2E)",
    "grader": "a face embedder trained on real faces, to grade generated ones in evaluation",
    "face-decoder": "a decoder of real faces from a latent (and its discriminator)",
    "face-attributes": "gender and age of a face, trained on labelled photos",
    "face-space": "a photographic StyleGAN face space (MobileStyleGAN) and the directions fitted in it",
}


@dataclass(frozen=True)
class CheckpointInfo:
    """The contents of config.json."""

    kind: str = "voice-to-face"
    networks: tuple[str, ...] = ("voice_encoder", "generator")
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
    info = dataclasses.replace(
        info, networks=tuple(networks), code_version=__version__, weights_dtype=str(dtype).removeprefix("torch.")
    )
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
    if config.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{config} is {config.stat().st_size} bytes; a checkpoint's config is a few KB, so it is not one.")
    try:
        raw = json.loads(config.read_text())
        version = raw.get("format_version", 1) if isinstance(raw, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            raise TypeError(f"format_version must be a whole number, got {version!r}")
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path} was written by a newer voice2face (format {version}); "
                f"this one reads format {FORMAT_VERSION}. Upgrade voice2face."
            )
        info = _from_json(CheckpointInfo, _renamed_settings(_upgrade(raw) if version == 1 else raw))
    except RecursionError:
        raise CheckpointError(f"{config} is damaged: its JSON is nested too deeply to be a checkpoint's config.") from None
    except (json.JSONDecodeError, TypeError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(f"{config} is damaged or from an incompatible version: {err}") from None
    problems = _check_info(info)
    if not problems:
        problems = _check_size(info)
    if problems:
        raise CheckpointError(f"{config} cannot be used: {'; '.join(problems)}.")
    return info


def _check_size(info: CheckpointInfo) -> list[str]:
    """Networks the config would build past MAX_PARAMETERS, counted on PyTorch's "meta" device, which
    allocates nothing: a config within every width bound can still ask for gigabytes (4096 x 6 channels)."""
    problems = []
    for name in info.networks:
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Initializing zero-element tensors")  # empty buffers: nothing to count
                count = sum(p.numel() for p in build_network(info, name).state_dict().values())
        except CheckpointError as err:
            return [str(err)]
        if count > MAX_PARAMETERS:
            problems.append(f"its {name} would hold {count / 1e6:.0f} M weights (at most {MAX_PARAMETERS / 1e6:.0f} M)")
    return problems


def _check_info(info: CheckpointInfo) -> list[str]:
    problems = [] if info.kind in KINDS else [f"unknown kind {info.kind!r} (known: {', '.join(KINDS)})"]
    if not isinstance(info.trained_on, str):
        problems.append("trained_on must be text")
    return problems + check_model_config(info.model) + check_front_end(info.front_end)


def _upgrade(raw: dict) -> dict:
    """A format-1 config.json as format 2: the kind comes from the training role, and the
    generator's input width is no longer stored (it is the voice encoder's)."""
    raw = json.loads(json.dumps(raw))
    role = raw.get("training", {}).get("role")
    stage = raw.get("training", {}).get("stage")
    if role == "evaluator":
        raw["kind"], raw["networks"] = "grader", ["face_embedder", "classifier"]
    elif stage == "embedder":
        raw["kind"], raw["networks"] = "voice-encoder", ["voice_encoder"]
    else:
        raw["kind"], raw["networks"] = "voice-to-face", ["voice_encoder", "generator"]
    raw.get("model", {}).get("generator", {}).pop("embedding_dim", None)
    raw["format_version"] = FORMAT_VERSION
    return raw


#: Generator settings renamed since they were first written: old name -> new (the small face head's width
#: had four names on its way from the command line to the network).
_RENAMED_GENERATOR_SETTINGS = {"small_face_head": "small_face_channels"}


def _renamed_settings(raw: dict) -> dict:
    """A config.json whose generator settings carry their current names."""
    generator = raw.get("model", {}).get("generator", {})
    for old, new in _RENAMED_GENERATOR_SETTINGS.items():
        if isinstance(generator, dict) and old in generator:
            generator[new] = generator.pop(old)
    return raw


#: Format-1 weight names that format 2 moved.
_RENAMED_WEIGHTS = {"input_mean": "standardise.input_mean", "input_std": "standardise.input_std"}
#: Buffers added after checkpoints were shipped: a checkpoint without them reads as zeros (no skin-tone
#: direction: the page leaves its slider out; no skin key: the identity's axes set the skin tone as before).
_ADDED_LATER = ("skin", "skin_reach", "skin_key")


def load_weights(path: str | Path, name: str, module: nn.Module) -> nn.Module:
    """Fill `module` from `path/<name>.safetensors`, checking every name and shape first."""
    file = Path(path) / weights_file(name)
    if not file.is_file():
        raise CheckpointError(f"The checkpoint {path} has no {file.name}; it is incomplete.")
    try:
        tensors = load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is truncated or corrupt ({err}). Re-copy or re-create the checkpoint.") from None
    tensors = {_RENAMED_WEIGHTS.get(k, k): v for k, v in tensors.items()}
    expected = module.state_dict()
    tensors |= {k: v for k, v in expected.items() if k.rsplit(".", 1)[-1] in _ADDED_LATER and k not in tensors}
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
    kinds = [k for k, v in tensors.items() if v.is_floating_point() != expected[k].is_floating_point()]
    if kinds:
        raise CheckpointError(f"{file} holds {tensors[kinds[0]].dtype} where {kinds[0]} must be "
                              f"{'floating point' if expected[kinds[0]].is_floating_point() else 'whole numbers'}; it is damaged.")  # fmt: skip
    broken = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise CheckpointError(f"{file} holds NaN or infinite weights ({', '.join(broken[:3])}); the training run diverged or the file is damaged.")
    huge = [k for k, v in tensors.items() if v.is_floating_point() and v.numel() and float(v.abs().max()) > MAX_WEIGHT]
    if huge:
        raise CheckpointError(f"{file} holds weights over {MAX_WEIGHT:g} ({', '.join(huge[:3])}); trained weights are far smaller, so it is damaged.")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return module


def build_network(info: CheckpointInfo, name: str) -> nn.Module:
    """The untrained network called `name` in a checkpoint of this config."""
    model = info.model
    builders = {
        "voice_encoder": lambda: build_voice_encoder(model.voice, info.front_end),
        "generator": lambda: build_generator(model.generator, model.voice.output_dim),
        "face_embedder": lambda: FaceEmbedder(model.face),
        "discriminator": lambda: Discriminator(model.face.embedding_dim),
        "classifier": lambda: IdentityClassifier(model.face.embedding_dim, model.n_identities),
        "decoder": lambda: FaceDecoder(model.generator.latent_dim, model.generator.channels, model.generator.image_channels),
        "face_discriminator": lambda: FaceDiscriminator(),
        "face_attributes": lambda: FaceAttributeNet(),
        "mapping": lambda: MappingNetwork(),
        "synthesis": lambda: SynthesisNetwork(model.generator.synthesis_widths),
        "face_space": lambda: FaceSpaceDirections(axes=model.generator.identity_axes),
    }
    if name not in builders:
        raise CheckpointError(f"Unknown network {name!r} in a checkpoint; known: {', '.join(builders)}.")
    return builders[name]()


def load_network(path: str | Path, name: str, info: CheckpointInfo | None = None) -> nn.Module:
    """Build network `name` from the checkpoint's config and fill it with its weights, in eval mode."""
    info = info or read_info(path)
    if name not in info.networks:
        raise CheckpointError(f"{path} is a {info.kind!r} checkpoint without a {name!r} network (it has {', '.join(info.networks)}).")
    return load_weights(path, name, build_network(info, name)).eval()


def require_kind(path: str | Path, info: CheckpointInfo, *kinds: str) -> None:
    """Refuse a checkpoint of another kind with a message that says what was expected."""
    if info.kind not in kinds:
        wanted = " or ".join(f"{k!r} ({KINDS[k]})" for k in kinds)
        raise CheckpointError(f"{path} is a {info.kind!r} checkpoint; this needs {wanted}.")


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
    """`value` as type `hint`, or TypeError: a config.json must hold what the code expects."""
    if dataclasses.is_dataclass(hint):
        return _from_json(hint, value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {value!r}")
        return tuple(_convert(args[0], v) for v in value) if args and args[-1] is Ellipsis else tuple(value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(next(a for a in args if a is not type(None)), value)
    if hint is bool and not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"expected a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value
