"""Every knob of a training run, as one frozen dataclass, and how settings reach it.

Settings come from a preset, then a JSON file, then `--set key=value`; each
value is converted to the field's type, and anything that does not fit is a
`Voice2FaceError` that names the key.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..audio.front_end import FrontEndConfig
from ..checkpoint import _convert
from ..errors import Voice2FaceError
from ..models import FaceEmbedderConfig, GeneratorConfig, ModelConfig, VoiceEncoderConfig, check_model_config

#: Stage names, with the old name of the grader stage kept as an alias.
STAGES = ("embedder", "gan", "grader", "face-gan", "face-attributes", "voice-map", "style-map")
ALIASES = {"face-eval": "grader"}


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run. Defaults are the paper's (batch 128, 50k iterations, Adam 2e-4, (0.5, 0.999))."""

    stage: str = "gan"
    data: str = ""  # dataset root (any layout of voice2face.data); face-gan / face-attributes: a folder of labelled photos
    layout: str = "auto"
    meta: str | None = None  # vox1_meta.csv for the voxceleb/processed layouts
    faces: str | None = None  # face folder for the voxceleb/processed layouts
    split: str = "paper"  # 'paper' (A-E test) or a file listing test identities
    out: str = "runs/voice2face"
    voice_encoder: str | None = None  # gan / voice-map: embedder run dir, or 'ge2e-pretrained' (checkpoints/ge2e)
    trained_on: str = ""  # what config.json says the model learned from; default: the data path
    seed: int = 0
    steps: int = 50_000
    batch_size: int = 128
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    crop_min: int = 300  # random voice crops of 300-800 frames (3-8 s)
    crop_max: int = 800
    noise_std: float = 0.05  # gan: noise on the unit voice embedding
    adversarial_weight: float = 1.0  # gan / voice-map: weight of the generator's real/fake loss (paper: 1)
    identity_weight: float = 1.0  # gan: weight of the generator's identity loss (paper: 1)
    reconstruction_weight: float = 0.0  # gan: L1 of the fake face to a real face of the voice's identity (paper: 0)
    attribute_weight: float = 0.0  # gan: L1 to the attribute group's mean face; voice-map: the attribute net's loss
    attribute_columns: tuple[str, ...] = ("gender",)  # gan: metadata columns that define the attribute groups
    embedding_crops: int = 0  # gan / voice-map: >0 embeds this many random crops per utterance once, up front
    val_fraction: float = 0.1  # embedder: utterances per speaker held out for top-1; face stages: photos held out
    min_age: int = 16  # face-gan / face-attributes: photos of people younger than this are left out
    init_decoder: str | None = "gan-face-generate"  # face-gan: start from the packaged DCGAN ('none': from scratch)
    decoder: str | None = None  # voice-map: face-gan run dir whose decoder is frozen under the map
    attribute_net: str | None = None  # voice-map: face-attributes run dir that steers gender and age
    real_voices: str | None = None  # voice-map: EmoDB folder (wav/ and speakers.csv) of real speech
    real_holdout: tuple[str, ...] = ("03", "08", "09", "10")  # voice-map: EmoDB speakers kept out of training
    face_space: str | None = None  # style-map: the 'face-space' checkpoint made by `python -m voice2face face-space`
    real_pairs: str | None = None  # style-map: talking-pairs folder (manifest.csv, <id>/voice.wav, <id>/face.png)
    pairs_holdout: tuple[str, ...] = (
        "grid_lrwp9a", "hdtf_WDA_KatieHill_000", "edtalk_mouth_source",  # women
        "grid_sbwe5n", "lrs2_00004", "lrs2_00016", "mimictalk_German_20s", "vox2_id06913_00089", "cremad_1001",  # men
    )  # style-map: talking pairs kept out of training (3 women, 6 men)
    labelled_voices: str | None = None  # style-map: voices_labelled folder (speakers.csv, clips.csv): real voices with gender and age
    labelled_holdout: float = 0.15  # style-map: share of each (gender, age band) of labelled speakers kept out (`held_out_labelled`)
    identity_init: str = "random"  # style-map: "lda" starts the identity head on the speaker-discriminant directions
    identity_rank: int = 0  # style-map, lda: how many of those directions (0: identity_axes), turned onto all identity_axes
    identity_within_gender: bool = False  # style-map, lda: directions that part speakers within each gender, not the genders
    identity_language_directions: int = 0  # style-map, lda: directions that part languages, taken out of what identity reads first
    skin_key: bool = False  # style-map: the fine layers' skin tone set by a key of the identity where languages differ least (`fit_skin_key`)
    fit_reading_heads: bool = False  # style-map: solve the gender and age heads by regularised regression (`reading_l2`) up front
    reading_l2: float = 0.1  # style-map: their L2 penalty on the standardised inputs
    even_sources: bool = False  # style-map: draw each batch's real speakers evenly from each recording set (else from all alike)
    real_share: float = 0.25  # voice-map: share of each batch's speakers drawn from the few real ones
    synthetic_gender_weight: float = 1.0  # style-map: weight of synthetic voices in the gender loss (0: real voices only)
    speakers_per_batch: int = 16  # voice-map: speakers in each batch (4 clip embeddings each)
    diversity_weight: float = 1.0  # voice-map: keep the speakers' relative distances in the latent
    consistency_weight: float = 1.0  # voice-map: one speaker's clips to one latent
    prior_weight: float = 1.0  # voice-map: latents distributed as the decoder's N(0, I)
    num_workers: int = 2
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    device: str = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    explicit: tuple[str, ...] = ()  # the keys the user set (file or --set), so a stage never silently overrides them


def preset(name: str) -> TrainConfig:
    """'paper': the paper's settings. 'cpu-tiny': narrow nets and small batches, to see losses move on 2 cores."""
    if name == "paper":
        return TrainConfig()
    if name == "cpu-tiny":
        model = ModelConfig(
            voice=VoiceEncoderConfig(channels=(64, 96, 128, 160)),
            generator=GeneratorConfig(channels=(256, 128, 64, 32, 16)),
            face=FaceEmbedderConfig(channels=(16, 32, 64, 128, 128)),
        )
        return TrainConfig(
            steps=300, batch_size=16, crop_min=100, crop_max=300, num_workers=0, log_every=10,
            sample_every=100, checkpoint_every=100, model=model,
        )  # fmt: skip
    raise Voice2FaceError(f"Unknown preset {name!r}; known: paper, cpu-tiny.")


def override(config: Any, key: str, value: Any, prefix: str = "") -> Any:
    """A copy of dataclass `config` with dotted `key` (e.g. 'model.generator.channels') set to `value`,
    converted to the field's type."""
    head, _, rest = key.partition(".")
    names = {f.name for f in dataclasses.fields(config)}
    if head not in names:
        raise Voice2FaceError(f"Unknown setting {prefix + key!r}; settings here are: {', '.join(sorted(names))}.")
    if rest:
        return dataclasses.replace(config, **{head: override(getattr(config, head), rest, value, f"{prefix}{head}.")})
    hint = typing.get_type_hints(type(config))[head]
    try:
        return dataclasses.replace(config, **{head: _convert(hint, coerce(hint, value))})
    except (TypeError, ValueError, KeyError) as err:
        raise Voice2FaceError(f"Setting {prefix + key!r}: {err}.") from None


def coerce(hint: Any, value: Any) -> Any:
    """Text from the command line towards the field's type: '3' for an int, 'x' for a 1-tuple, ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and isinstance(value, (str, int, float)):
        return (value,)
    if isinstance(value, str):
        if hint is int or hint is float:
            return hint(value)  # ValueError for 'abc'
        if hint is bool and value.lower() in ("true", "false"):
            return value.lower() == "true"
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if type(None) in args and isinstance(value, (int, float)) and str in args:
        return str(value)
    return value


def parse_value(text: str) -> Any:
    """'300' -> 300, '[1,2]' -> [1, 2], 'runs/x' -> 'runs/x'."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_config(preset_name: str, config_file: str | None, settings: list[str]) -> TrainConfig:
    """A preset, then a JSON file of (nested) settings, then `key=value` overrides."""
    config = preset(preset_name)
    if config_file:
        try:
            tree = json.loads(Path(config_file).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise Voice2FaceError(f"Cannot read the settings file {config_file}: {err}") from None
        for key, value in _flatten(tree):
            config = override(config, key, value)
            config = dataclasses.replace(config, explicit=(*config.explicit, key))
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise Voice2FaceError(f"--set takes key=value, got {item!r}.")
        config = override(config, key.strip(), parse_value(value))
        config = dataclasses.replace(config, explicit=(*config.explicit, key.strip()))
    config = dataclasses.replace(config, stage=ALIASES.get(config.stage, config.stage))
    if config.stage not in STAGES:
        raise Voice2FaceError(f"stage must be one of {', '.join(STAGES)}, got {config.stage!r}.")
    problems = check_model_config(config.model)
    if problems:
        raise Voice2FaceError(f"Model settings: {'; '.join(problems)}.")
    if config.steps < 0 or config.batch_size < 1 or config.lr <= 0:
        raise Voice2FaceError("steps must be >= 0, batch_size >= 1 and lr > 0.")
    if config.speakers_per_batch < 2:
        raise Voice2FaceError(f"speakers_per_batch must be at least 2 (the losses compare speakers); got {config.speakers_per_batch}.")
    if config.synthetic_gender_weight < 0:
        raise Voice2FaceError(f"synthetic_gender_weight weighs synthetic voices in the gender loss: 0 or more; got {config.synthetic_gender_weight}.")
    if not 0 <= config.real_share <= 1:
        raise Voice2FaceError(f"real_share is a share of each batch's speakers, between 0 and 1; got {config.real_share}.")
    if config.stage == "gan" and not (config.adversarial_weight or config.identity_weight or config.reconstruction_weight or config.attribute_weight):
        raise Voice2FaceError(
            "adversarial_weight, identity_weight, reconstruction_weight and attribute_weight are all 0: the generator would learn nothing."
        )
    return config


def _flatten(tree: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value
