"""Stage 'grader' (old name 'face-eval'): the face embedder that evaluation grades generated faces with.

A face embedder with an identity head, trained on the training identities'
real faces only: it never sees a test identity or a generated face.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..datasets.paired import FaceDataset, Identity
from ..models import GraderNetwork
from .config import TrainConfig
from .loop import Batches, Runtime, Stage, wrap
from .sources import describe_data, with_identities


class GraderStage(Stage):
    kind = "grader"

    def __init__(self, config: TrainConfig, rt: Runtime, train_ids: list[Identity], test_ids: list[Identity]):
        self.config = config = dataclasses.replace(config, model=with_identities(config.model, len(train_ids)))
        self.rt = rt
        self.model = GraderNetwork(config.model.face, len(train_ids))
        self.networks = {"face_embedder": self.model.embedder, "classifier": self.model.classifier}
        self.optimizers = {"optimizer": torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=config.betas)}
        self.trained_on = config.trained_on or "real faces of the training identities of " + describe_data(config, train_ids, test_ids)
        self.ddp = wrap(self.model, rt)
        self.batches = Batches(FaceDataset(train_ids), config, rt, torch.utils.data.default_collate)

    def step(self) -> dict[str, float]:
        faces, labels = (t.to(self.rt.device) for t in next(self.batches))
        loss = F.cross_entropy(self.ddp(faces), labels)
        opt = self.optimizers["optimizer"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"identity": loss.item()}

    def close(self) -> None:
        self.batches.close()
