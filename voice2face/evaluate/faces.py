"""Generated faces for evaluation, and the gender figures both protocols report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..datasets.paired import voice_features
from ..errors import Voice2FaceError
from ..lengths import plan_cuts
from ..pipeline import Voice2Face
from .judges import JUDGE_SIZE
from .stats import rate


@dataclass
class GeneratedFaces:
    """Per duration, one face (3, S, S) per kept clip and the voice embedding it was drawn from."""

    faces: dict[float | None, list[torch.Tensor]]
    embeddings: dict[float | None, list[torch.Tensor]]
    kept: list[int]  # indices of the clips used


@torch.no_grad()
def generated_faces(model: Voice2Face, clips: Sequence[Path], durations: Sequence[float | None]) -> GeneratedFaces:
    """Faces from the pipeline's own pieces, shrunk to the judges' size if drawn larger
    (S = min(the model's size, JUDGE_SIZE)); a clip without usable speech is skipped, not fatal.
    Where the model has a small head that draws at least JUDGE_SIZE, the faces come from it: they
    are the faces the page shows."""
    generated = GeneratedFaces({d: [] for d in durations}, {d: [] for d in durations}, [])
    for k, clip in enumerate(tqdm(clips, desc="generating", unit="clip")):
        try:
            features = voice_features(clip, model.front_end)
        except Voice2FaceError:
            continue
        cuts = plan_cuts(features.shape[-1], durations, model.front_end)
        embeddings = model.embed_cuts(features, cuts)
        faces = model.generator(embeddings, small=True) if model.draws_small(JUDGE_SIZE) else model.generator(embeddings)
        if faces.shape[-1] > JUDGE_SIZE:  # 1024-px faces of hundreds of clips would not fit in memory
            faces = F.interpolate(faces, size=(JUDGE_SIZE, JUDGE_SIZE), mode="bilinear", antialias=True)
        for d, face, embedding in zip(durations, faces.cpu(), embeddings.cpu()):
            generated.faces[d].append(face)
            generated.embeddings[d].append(embedding)
        generated.kept.append(k)
    if not generated.kept:
        raise Voice2FaceError("No evaluation clip holds usable speech.")
    return generated


def gender_agreement(said: np.ndarray, truth: np.ndarray) -> dict:
    """Share of faces read as the voice's gender, overall and per gender (a face not found counts as a miss).

    Per gender too: on an unbalanced set, one face for everybody scores the majority's share."""
    known = truth != ""
    return {
        "gender_agreement": rate(said[known] == truth[known]),
        "gender_agreement_male_voices": rate(said[truth == "m"] == "m"),
        "gender_agreement_female_voices": rate(said[truth == "f"] == "f"),
    }


def majority_share(truth: np.ndarray) -> float:
    """What one face of the majority's gender for every voice would score."""
    known = truth[truth != ""]
    return float(max((known == "m").mean(), (known == "f").mean())) if len(known) else float("nan")
