"""Generated faces for evaluation, and the gender figures both protocols report."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..audio.front_end import plan_cuts
from ..data import voice_features
from ..errors import Voice2FaceError
from ..judges import JUDGE_SIZE
from ..pipeline import Voice2Face
from .stats import rate


@torch.no_grad()
def generated_faces(model: Voice2Face, clips: Sequence[Path], durations: Sequence[float | None]) -> tuple[dict, list[int]]:
    """Per duration, one face (3, S, S) per clip, from the pipeline's own pieces, shrunk to the judges'
    size if it is drawn larger (S = min(the model's size, JUDGE_SIZE)); and the indices of the clips
    used (a clip without usable speech is skipped, not fatal)."""
    generated: dict[float | None, list[torch.Tensor]] = {d: [] for d in durations}
    kept = []
    for k, clip in enumerate(tqdm(clips, desc="generating", unit="clip")):
        try:
            features = voice_features(clip, model.front_end)
        except Voice2FaceError:
            continue
        cuts = plan_cuts(features.shape[-1], durations, model.front_end)
        faces = model.generator(model.embed_cuts(features, cuts))
        if faces.shape[-1] > JUDGE_SIZE:  # 1024-px faces of hundreds of clips would not fit in memory
            faces = F.interpolate(faces, size=(JUDGE_SIZE, JUDGE_SIZE), mode="bilinear", antialias=True)
        for d, face in zip(durations, faces.cpu()):
            generated[d].append(face)
        kept.append(k)
    if not kept:
        raise Voice2FaceError("No evaluation clip holds usable speech.")
    return generated, kept


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
