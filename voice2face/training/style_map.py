"""Stage 'style-map': voices mapped into the photographic StyleGAN face space (the default model).

    python -m voice2face train --stage style-map --data VOICES --split TEST_LIST --out runs/style-map \
        --set voice_encoder=ge2e-pretrained face_space=runs/face-space real_voices=EMODB real_pairs=PAIRS

The frozen voice encoder's embedding is read by the three linear heads of
`StyleVoiceMap` (gender, age, identity coordinates); the face space's fitted
directions and the frozen MobileStyleGAN synthesis network turn that into a
face. Nothing is rendered while training: the face space was surveyed once
(`voice2face face-space`), so the losses act on the numbers that place the face.

- gender (`attribute_weight`): cross-entropy with the speaker's gender; synthetic
  voices count `synthetic_gender_weight` times as much as real ones (the shipped
  model: 0, since espeak-ng's voices taught the head cues that mislead it on real
  speech: in leave-one-speaker-out checks on real speakers its errors fell when
  they were left out);
- age (`attribute_weight`): the age must fall in the speaker's range
  (synthetic: its age band; EmoDB: the actor's age +- 6; talking pairs: the
  age judged from their face +- 10, a noisy estimate);
- diversity, consistency, prior (as in voice-map): speakers' coordinates keep
  the proportions of their voices' distances, one speaker's clips land
  together, and coordinates stay distributed as N(0, I) in units of the
  region's spread, where the generator draws good faces;
- gender_offset, correlation (`prior_weight`): each gender of each recording
  set is centred, so the coordinates do not carry gender (its own direction
  does), and the coordinates are uncorrelated, so speakers do not differ along
  one direction only.

Voices: synthetic (espeak-ng) speakers from `data`, EmoDB (`real_voices`,
`real_holdout` kept out) and talking pairs (`real_pairs`, `pairs_holdout` kept
out). The real ones are few, so `real_share` of each batch's speakers are real.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import load_network, read_info, require_kind
from ..datasets.labelled import held_out_labelled, read_labelled_voices, read_talking_pairs
from ..errors import Voice2FaceError
from ..images import image_grid, to_pil
from ..models import StyleVoiceMap
from ..models.face_directions import random_people
from ..models.style_map import AGE_CENTRE, YEARS_PER_UNIT
from ..paths import voice_encoder_checkpoint
from .config import TrainConfig
from .loop import Runtime, Stage
from .sources import embed_crops, frozen_voice_encoder
from .voice_map import (
    VoiceSpeaker,
    geometry_losses,
    require_both_genders,
    sample_embeddings,
    sample_path,
    speaker_batch,
    training_speakers,
)

#: Talking pairs' ages are judged from their faces, often 10-20 years off: a wide range.
PAIR_AGE_SLACK = 10.0
#: Clip embeddings are kept here in the run folder, so a resumed run or a re-run with other loss settings
#: (copy the file into the new run folder) skips the slowest part.
EMBEDDINGS_FILE = "voice_embeddings.pt"
#: Sample sheets are drawn at this size.
SAMPLE_SIZE = 128


def paired_speakers(config: TrainConfig) -> tuple[list[VoiceSpeaker], list[VoiceSpeaker]]:
    """(training, held-out) speakers of the talking-pairs folder, if one is set."""
    if not config.real_pairs:
        return [], []
    train, test = [], []
    for p in read_talking_pairs(config.real_pairs):
        speaker = VoiceSpeaker(f"pair-{p.name}", p.clips, p.gender == "f", (p.age - PAIR_AGE_SLACK, p.age + PAIR_AGE_SLACK), "pairs")
        (test if p.name in config.pairs_holdout else train).append(speaker)
    return train, test


#: A labelled voice whose age is given in years is asked for a face of that age +- this many years.
LABELLED_AGE_SLACK = 3.0


def labelled_speakers(config: TrainConfig) -> tuple[list[VoiceSpeaker], list[VoiceSpeaker]]:
    """(training, held-out) speakers of the labelled-voices folder, if one is set; `labelled_holdout` of
    each gender and age band held out."""
    if not config.labelled_voices:
        return [], []
    voices = read_labelled_voices(config.labelled_voices)
    held = held_out_labelled(voices, config.labelled_holdout)
    train, test = [], []
    for v in voices:
        ages = (v.age - LABELLED_AGE_SLACK, v.age + LABELLED_AGE_SLACK) if v.age is not None else (v.age_band[0], v.age_band[1] + 1.0)
        (test if v.name in held else train).append(VoiceSpeaker(f"voice-{v.name}", v.clips, v.gender == "f", ages, "labelled", v.language))
    return train, test


#: How each recording set is named where a model says what it learned from.
SOURCE_WORDS = {
    "labelled": "Common Voice and speechocean762 (real, self-reported gender and age)",
    "emodb": "EmoDB (real, acted emotions)",
    "pairs": "talking pairs (real, age judged from the face)",
    "synthetic": "espeak-ng (synthetic)",
}


def describe_speakers(speakers: list[VoiceSpeaker]) -> str:
    """'1,010 speakers: 990 from Common Voice ..., 6 from EmoDB ...' for a model's trained_on."""
    counts = {source: sum(s.source == source for s in speakers) for source in SOURCE_WORDS}
    parts = [f"{n:,} from {SOURCE_WORDS[source]}" for source, n in counts.items() if n]
    return f"{len(speakers):,} speakers: " + ", ".join(parts)


def within_speaker_variance(values: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of each row's value from its speaker's mean value."""
    _, index = torch.unique(owners, return_inverse=True)
    counts = torch.bincount(index).float()
    means = torch.zeros(len(counts), device=values.device).index_add_(0, index, values) / counts
    return (values - means[index]).square().mean()


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of `values` weighted by `weights`; 0 where every weight is 0 (a batch with nothing to learn from)."""
    return (values * weights).sum() / weights.sum().clamp_min(1e-6)


def offset_from_centre(values: torch.Tensor, groups: list[torch.Tensor]) -> torch.Tensor:
    """Mean over the non-empty groups (row masks) of the squared distance of the group's mean row from 0,
    per coordinate."""
    means = [values[g].mean(0) for g in groups if g.any()]
    return torch.stack(means).square().mean()


def off_diagonal_covariance(values: torch.Tensor) -> torch.Tensor:
    """Mean squared covariance between different coordinates (0 for uncorrelated coordinates)."""
    centred = values - values.mean(0)
    cov = centred.T @ centred / max(len(values) - 1, 1)
    return (cov - torch.diag(torch.diagonal(cov))).square().sum() / max(cov.shape[0] * (cov.shape[0] - 1), 1)


#: A language counts (`language_groups`) when this many training speakers speak it.
MIN_LANGUAGE_SPEAKERS = 5


def language_groups(spoken: list[tuple[str, torch.Tensor]]) -> list[list[int]]:
    """Which of the (language, speaker's mean) pairs speak each language that counts (MIN_LANGUAGE_SPEAKERS speakers
    or more; speakers of no known language are left out), as lists of their indices."""
    by_language: dict[str, list[int]] = {}
    for i, (language, _) in enumerate(spoken):
        if language:
            by_language.setdefault(language, []).append(i)
    return [rows for rows in by_language.values() if len(rows) >= MIN_LANGUAGE_SPEAKERS]


def language_directions(spoken: list[tuple[str, torch.Tensor]], count: int) -> torch.Tensor:
    """(dim, m) orthonormal directions along which the mean voices of languages differ most (principal axes
    of the languages' means, each language weighing alike), from (language, speaker's mean voice) pairs, the
    languages that count (`language_groups`)."""
    means = [torch.stack([spoken[i][1] for i in rows]).mean(0) for rows in language_groups(spoken)]
    if len(means) < 2:
        raise Voice2FaceError(f"identity_language_directions needs two languages or more with {MIN_LANGUAGE_SPEAKERS} "
                              "training speakers each (labelled_voices gives them).")  # fmt: skip
    centred = torch.stack(means) - torch.stack(means).mean(0)
    _, _, directions = torch.linalg.svd(centred, full_matrices=False)
    return directions[: min(count, len(means) - 1)].T


#: Random people of the face space whose spread along the skin direction the skin key is measured in.
SKIN_KEY_PEOPLE = 2000
#: The skin key's spread over the training speakers, in those people's spreads. Set in the fine layers at 2, the
#: skin of 80 random people (N(0, I) on the 32 axes of the default face space) spreads as the face network's own
#: does: ITA std 23.1 degrees against 23.7 for its mapping network's faces at truncation 0.7 (1.0: 19.8, 3.0: 29.7).
SKIN_KEY_SPREADS = 2.0
#: What a model's trained_on says of its skin key.
SKIN_KEY_SAID = "; skin tone keyed along the one way of who the person is where these speakers' languages differ least"


def least_language_direction(spoken: list[tuple[str, torch.Tensor]]) -> torch.Tensor:
    """The direction of the speakers' coordinates along which their languages differ least for how much speakers
    differ along it (the smallest ratio of between-language to between-speaker variance: the reverse of a
    discriminant), scaled to unit spread over the speakers; from (language, speaker's mean) pairs, the languages
    that count (`language_groups`). Over the default model's 1,011 training labelled speakers 1.7% of the
    spread along it lies between languages (4.5% by chance; 8.5% for the skin tone its identity axes give)."""
    values = torch.stack([v for _, v in spoken])
    centred = values - values.mean(0)
    eigenvalues, vectors = torch.linalg.eigh(centred.T @ centred / len(values))
    # only the directions the coordinates span: with identity_rank below the axes they span fewer, and a direction
    # they leave empty, whitened, would be the 'least language' at a scale of thousands
    spanned = eigenvalues > 1e-6 * eigenvalues.max()
    whiten = vectors[:, spanned] / eigenvalues[spanned].sqrt()
    between = whiten.new_zeros(whiten.shape[1], whiten.shape[1])
    for rows in language_groups(spoken):
        mean = centred[rows].mean(0) @ whiten
        between += len(rows) / len(values) * torch.outer(mean, mean)
    return whiten @ torch.linalg.eigh(between)[1][:, 0]


def centred_within_gender(means: torch.Tensor, female: torch.Tensor) -> torch.Tensor:
    """Speakers' mean voices (rows) less the mean of their gender's (`female`, a bool a row): what parts speakers of
    one gender, with the gap between the genders (the reading's to set) taken out."""
    return torch.where(female[:, None], means - means[female].mean(0), means - means[~female].mean(0))


class StyleMapStage(Stage):
    kind = "voice-to-face"

    def __init__(self, config: TrainConfig, rt: Runtime):
        self.encoder, config = frozen_voice_encoder(config)
        encoder_info = read_info(voice_encoder_checkpoint(config.voice_encoder))
        if not config.face_space:
            raise Voice2FaceError("The style-map stage needs --set face_space=<dir made by 'python -m voice2face face-space'>.")
        if config.embedding_crops < 1:
            raise Voice2FaceError("The style-map stage embeds voice crops once, up front: set embedding_crops (e.g. 4).")
        space_info = read_info(config.face_space)
        require_kind(config.face_space, space_info, "face-space")
        # with statistics after the speaker embedding (CAM++), the identity head reads the embedding alone
        identity_inputs = self.encoder.embedding_dim if config.model.voice.statistics_dim else 0
        generator_config = dataclasses.replace(config.model.generator, backend="stylegan", standardise_input=True,
                                               synthesis_widths=space_info.model.generator.synthesis_widths,
                                               identity_inputs=identity_inputs)  # fmt: skip
        self.config = config = dataclasses.replace(config, model=dataclasses.replace(config.model, generator=generator_config))
        self.rt = rt
        self.generator = StyleVoiceMap(generator_config, self.encoder.output_dim)
        self.generator.synthesis.load_state_dict(load_network(config.face_space, "synthesis", space_info).state_dict())
        directions = load_network(config.face_space, "face_space", space_info).state_dict()
        k = generator_config.identity_axes
        self.generator.directions.load_state_dict({n: v[:k] if n in ("axes", "spread") else v for n, v in directions.items()})
        self.generator.synthesis.requires_grad_(False)
        speakers, held_out = training_speakers(config, check=False)
        pairs, pairs_held_out = paired_speakers(config)
        labelled, labelled_held_out = labelled_speakers(config)
        self.speakers, self.held_out = speakers + pairs + labelled, held_out + pairs_held_out + labelled_held_out
        require_both_genders(self.speakers, "style-map (data, real_voices, real_pairs and/or labelled_voices)")
        # fitted reading heads are solved once in `start` and left alone; the identity head always learns
        heads = [*self.generator.identity.parameters()]
        if not config.fit_reading_heads:
            heads += [*self.generator.gender.parameters(), *self.generator.age.parameters()]
        self.networks = {"voice_encoder": self.encoder, "generator": self.generator}
        self.optimizers = {"optimizer": torch.optim.Adam(heads, lr=config.lr, betas=config.betas)}
        self.trained_on = config.trained_on or (
            f"voices of {describe_speakers(self.speakers)}, heard by a frozen voice encoder ({encoder_info.trained_on.split(';')[0]}), "
            f"placed in the face space of {space_info.trained_on}; voices and faces paired by gender and age, not by identity"
            + (SKIN_KEY_SAID if config.skin_key and self.generator.has_skin_tone else "")
        )
        self.encoder = self.encoder.to(rt.device)
        clips = [(k, clip) for k, s in enumerate(self.speakers) for clip in s.clips]
        self.embeddings, owners = self.embed(clips)
        # Embedding draws random crops; reading the file draws none. Batches start from the seed either
        # way, so a run that reuses the file trains the same model as the run that made it.
        random.seed(config.seed + rt.rank)
        self.rows_of: list[list[int]] = [[] for _ in self.speakers]
        for row, owner in enumerate(owners):
            self.rows_of[clips[owner][0]].append(row)
        self.real_ids = [k for k, s in enumerate(self.speakers) if s.real and self.rows_of[k]]
        self.synthetic_ids = [k for k, s in enumerate(self.speakers) if not s.real and self.rows_of[k]]

    def embed(self, clips: list[tuple[int, Path]]) -> tuple[torch.Tensor, list[int]]:
        """Every clip's crop embeddings (see `embed_crops`), from the run folder's file when it holds these clips."""
        names = [str(c) for _, c in clips]
        file = Path(self.config.out) / EMBEDDINGS_FILE
        if file.is_file():
            saved = torch.load(file, weights_only=True)
            same_encoder = saved["embeddings"].shape[1] == self.encoder.output_dim
            if saved["clips"] == names and saved["crops"] == self.config.embedding_crops and same_encoder:
                return saved["embeddings"], saved["owners"]
        embeddings, owners = embed_crops(self.encoder, [c for _, c in clips], self.config, self.rt.device, self.rt.main)
        if self.rt.main:
            torch.save({"clips": names, "crops": self.config.embedding_crops, "embeddings": embeddings, "owners": owners}, file)
        return embeddings, owners

    def start(self, resumed: bool) -> None:
        self.generator.to(self.rt.device)
        if not resumed:
            self.generator.standardise.fit(self.embeddings.to(self.rt.device))
            if self.config.fit_reading_heads:
                self.fit_reading_heads()
            if self.config.identity_init == "lda":
                self.start_identity_from_lda()

    @torch.no_grad()
    def start_identity_from_lda(self) -> None:
        """Start the identity head on the directions that part speakers most and move least within one
        speaker (linear discriminant analysis of the speaker embedding: between-speaker scatter over
        within-speaker scatter, the latter from each speaker's crops and clips, EmoDB's seven emotions
        among them), scaled so speakers' coordinates have unit spread. Emotion and recording move a clip
        along other directions than a change of speaker does; the identity coordinates then follow the latter.

        With `identity_rank` r below the `identity_axes` K, the first r directions (fewer, steadier within
        one speaker: on held-out EmoDB actors, a clip-to-clip distance 0.65 of two actors' with 16 against
        0.73 with 32) are turned onto all K coordinates by a fixed random rotation scaled by sqrt(K / r), so
        every person axis of the face space varies from speaker to speaker, each with unit spread.

        With `identity_within_gender`, the speakers' means are centred within each gender first, so the directions
        part speakers of one gender, not women from men: the reading sets gender, and steps can be left out.

        With `identity_language_directions` m, the m directions along which languages' speakers differ
        most are taken out first (`language_directions`): an accent is language, not what a person looks
        like, so speakers of one language should not share a corner of the face space."""
        device, g = self.rt.device, self.generator
        axes = g.config.identity_axes
        rank = min(self.config.identity_rank or axes, axes)
        x = g.standardise(self.embeddings.to(device))[:, : g.identity_inputs].double()
        keep = torch.eye(x.shape[1], device=device, dtype=x.dtype)
        if self.config.identity_language_directions:
            spoken = [(self.speakers[k].language, x[rows].mean(0)) for k, rows in enumerate(self.rows_of) if rows]
            languages = language_directions(spoken, self.config.identity_language_directions)
            keep = keep - languages @ languages.T
            x = x @ keep
        groups = [x[rows] for rows in self.rows_of if rows]
        means = torch.stack([rows.mean(0) for rows in groups])
        centre = means.mean(0)
        within = sum((rows - rows.mean(0)).T @ (rows - rows.mean(0)) for rows in groups) / len(x)
        if self.config.identity_within_gender:
            female = torch.tensor([s.female for s, rows in zip(self.speakers, self.rows_of, strict=True) if rows], device=device)
            means = centred_within_gender(means, female)
        between = torch.cov(means.T)
        within = within + 1e-3 * within.trace() / len(within) * torch.eye(len(within), device=device, dtype=x.dtype)
        values, vectors = torch.linalg.eigh(within)
        whiten = vectors / values.sqrt()
        _, directions = torch.linalg.eigh(whiten.T @ between @ whiten)
        projection = whiten @ directions.flip(1)[:, :rank]
        projection = projection / ((means - means.mean(0)) @ projection).std(0)
        if rank < axes:
            turn = torch.randn(axes, rank, generator=torch.Generator().manual_seed(self.config.seed), dtype=x.dtype)
            projection = projection @ (torch.linalg.qr(turn)[0].to(device) * (axes / rank) ** 0.5).T
        projection = keep @ projection  # the head reads the embedding as it comes: languages' directions taken out here
        g.identity.weight.copy_(projection.T.float())
        g.identity.bias.copy_(-(centre @ projection).float())

    @torch.no_grad()
    def fit_reading_heads(self) -> None:
        """Solve the gender head (L2-regularised logistic regression) and the age head (ridge regression to
        the middle of each speaker's age range) on every training row at once, each recording set weighing
        as much as any other and each speaker alike within it. On held-out speakers these read gender and
        age better than heads trained by the batches' losses, which fit 1,216 inputs on about a thousand
        speakers without restraint (see REPRODUCE.md)."""
        device, g = self.rt.device, self.generator
        x = g.standardise(self.embeddings.to(device))
        owner = torch.tensor([k for k, rows in enumerate(self.rows_of) for _ in rows], device=device)
        order = torch.tensor([row for rows in self.rows_of for row in rows], device=device)
        x = x[order]
        speakers = [self.speakers[k] for k in owner.tolist()]
        sources = sorted({s.source for s in speakers})
        per_speaker = torch.bincount(owner, minlength=len(self.speakers)).float()
        speakers_in = {src: sum(1 for k, s in enumerate(self.speakers) if s.source == src and self.rows_of[k]) for src in sources}
        weight = torch.tensor([1.0 / (len(sources) * speakers_in[s.source]) for s in speakers], device=device) / per_speaker[owner]
        female = torch.tensor([float(s.female) for s in speakers], device=device)
        age = torch.tensor([(sum(s.age_range) / 2 - AGE_CENTRE) / YEARS_PER_UNIT for s in speakers], device=device)
        l2 = self.config.reading_l2
        # age: weighted ridge in closed form, intercept unpenalised
        design = torch.cat([x, torch.ones(len(x), 1, device=device)], 1)
        penalty = l2 * torch.eye(design.shape[1], device=device)
        penalty[-1, -1] = 0
        solution = torch.linalg.solve(design.T @ (design * weight[:, None]) + penalty, design.T @ (weight * age))
        g.age.weight.copy_(solution[None, :-1])
        g.age.bias.copy_(solution[-1:])
        # gender: weighted logistic regression with the same penalty, by L-BFGS
        w = torch.zeros(x.shape[1] + 1, device=device, requires_grad=True)
        optimiser = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

        def loss() -> torch.Tensor:
            optimiser.zero_grad()
            value = (weight * F.binary_cross_entropy_with_logits(design @ w, female, reduction="none")).sum() + l2 / 2 * w[:-1].square().sum()
            value.backward()
            return value

        with torch.enable_grad():
            optimiser.step(loss)
        g.gender.weight.copy_(w.detach()[None, :-1])
        g.gender.bias.copy_(w.detach()[-1:])

    def batch(self) -> tuple[torch.Tensor, list[int]]:
        return speaker_batch(self, self.config)

    def step(self) -> dict[str, float]:
        embeddings, owners = self.batch()
        g = self.generator
        x = g.standardise(embeddings)
        speakers = [self.speakers[k] for k in owners]
        device = self.rt.device
        female = torch.tensor([float(s.female) for s in speakers], device=device)
        gender_weight = torch.tensor([1.0 if s.real else self.config.synthetic_gender_weight for s in speakers], device=device)
        # ages in the head's units (decades around AGE_CENTRE), so the age loss has the scale of the others
        low, high = (torch.tensor([(s.age_range[i] - AGE_CENTRE) / YEARS_PER_UNIT for s in speakers], device=device) for i in (0, 1))
        age = g.age(x)[:, 0]
        speaker = x[:, : g.identity_inputs]  # who speaks: what the identity head reads, and whose distances it keeps
        identity = g.identity(speaker)
        owner = torch.tensor(owners, device=device)
        losses = {
            "gender": weighted_mean(F.binary_cross_entropy_with_logits(g.gender(x)[:, 0], female, reduction="none"), gender_weight),
            "age": (F.relu(low - age) + F.relu(age - high)).mean(),
            **geometry_losses(speaker, identity, owner),
            # one speaker's clips should read as one age: an age that wanders from clip to clip
            # changes the face more than anything else (measured on validation speakers)
            "age_consistency": within_speaker_variance(age, owner),
        }
        # The speakers of one recording set (EmoDB's studio, the talking pairs, espeak-ng) sit close together
        # in the voice space; held to N(0, I) within each set, they spread over the whole region instead
        # of sharing a corner of it (one face for all of EmoDB's men).
        sources = [s.source for s in speakers]
        parts = [torch.tensor([x == name for x in sources], device=device) for name in sorted(set(sources))]
        losses["prior"] = sum(geometry_losses(speaker[p], identity[p], owner[p])["prior"] for p in parts) / len(parts)
        # The prior holds each coordinate's variance, which speakers all on one line also meet: they then
        # differ along one direction only. Coordinates are kept uncorrelated too.
        losses["correlation"] = sum(off_diagonal_covariance(identity[p]) for p in parts) / len(parts)
        # Gender has its own direction. Left free, the identity coordinates carried it too (one offset for
        # every man, another for every woman), which moved validation speakers' faces 7-12 years off their
        # ages and drew more of them alike: each gender of each recording set is centred instead.
        losses["gender_offset"] = offset_from_centre(identity, [p & g for p in parts for g in (female > 0.5, female < 0.5)])
        c = self.config
        total = (c.attribute_weight * (losses["gender"] + losses["age"]) + c.diversity_weight * losses["diversity"]
                 + c.consistency_weight * (losses["consistency"] + losses["age_consistency"])
                 + c.prior_weight * (losses["prior"] + losses["gender_offset"] + losses["correlation"]))  # fmt: skip
        opt = self.optimizers["optimizer"]
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        return {k: v.item() for k, v in losses.items()}

    @torch.no_grad()
    def fit_skin_key(self) -> None:
        """Set `skin_key`: which way of the identity coordinates sets the skin tone (of the fine layers), so that no
        accent does: the one along which the training speakers' languages differ least (`least_language_direction`),
        SKIN_KEY_SPREADS of the face space's own people's spread along the skin direction. Left to the identity's
        axes, the skin tone followed languages (held-out labelled voices: eta squared 0.28 where shuffled languages
        give 0.12, p 0.011), where CAM++ puts one language's speakers near each other, and spread less than the
        network's own faces' (REPRODUCE.md has both, measured)."""
        g, device = self.generator, self.rt.device
        if not g.has_skin_tone:
            return
        spoken = [(self.speakers[k].language, g.read(self.embeddings[rows].to(device)).identity.double().mean(0))
                  for k, rows in enumerate(self.rows_of) if rows]  # fmt: skip
        key = least_language_direction(spoken)
        people = g.directions.style(*random_people(SKIN_KEY_PEOPLE, g.config.identity_axes, self.config.seed))
        spread = ((people - g.directions.centre) @ g.directions.skin).std()
        g.skin_key.copy_((key * SKIN_KEY_SPREADS * spread).float())

    @torch.no_grad()
    def after_step(self, step: int, last: bool) -> None:
        if last and self.config.skin_key:
            self.fit_skin_key()
        if not (self.rt.main and (step % self.config.sample_every == 0 or last)):
            return
        columns, embeddings = sample_embeddings(self)
        faces = [f.resize((SAMPLE_SIZE, SAMPLE_SIZE)) for e in embeddings for f in to_pil(self.generator(e[None]))]
        image_grid(faces, columns=columns).save(sample_path(self.config, step))

    def report(self, step: int) -> dict:
        return {"speakers": len(self.speakers), "real_speakers": len(self.real_ids), "held_out_speakers": [s.name for s in self.held_out]}
