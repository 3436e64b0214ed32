"""Evaluation on speakers held out of training, graded by models we do not train with the generator.

- `judged`: packaged face judges (detection, gender, age, dlib descriptor) on
  the faces of held-out speakers, real (EmoDB) or synthetic;
- `paired`: the paper's 1:2 matching and retrieval, for held-out identities
  that have real faces, with a separately trained grader.
"""

from .judged import emodb_speakers, identity_speakers, judge_speakers
from .paired import FaceGrader, evaluate
from .report import format_table, sweep_plot, write_report

__all__ = ["emodb_speakers", "identity_speakers", "judge_speakers", "FaceGrader", "evaluate", "format_table", "sweep_plot", "write_report"]
