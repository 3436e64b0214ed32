"""Stage 'embedder': speaker-recognition pre-training of the paper's voice embedder.

The voice embedder plus a scaled linear speaker head, cross-entropy over the
training speakers on random 3-8 s crops. Each save reports speaker-ID top-1
on utterances of the same speakers held out of this stage.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..datasets.paired import CropCollate, Identity, VoiceFaceDataset, hold_out_utterances, voice_features
from ..models import SpeakerClassifier, build_voice_encoder
from .config import TrainConfig
from .loop import Batches, Runtime, Stage, wrap
from .sources import check_cached_features, describe_data


class EmbedderStage(Stage):
    kind = "voice-encoder"

    def __init__(self, config: TrainConfig, rt: Runtime, train_ids: list[Identity], test_ids: list[Identity]):
        self.config, self.rt = config, rt
        check_cached_features(config)
        self.fit_ids, self.val_ids = hold_out_utterances(train_ids, config.val_fraction)
        self.model = SpeakerClassifier(build_voice_encoder(config.model.voice, config.front_end), len(train_ids))
        self.networks = {"voice_encoder": self.model.encoder}
        self.optimizers = {"optimizer": torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=config.betas)}
        self.trained_on = describe_data(config, train_ids, test_ids)
        self.n_speakers = len(train_ids)
        self.ddp = wrap(self.model, rt)
        self.batches = Batches(
            VoiceFaceDataset(self.fit_ids, config.front_end, with_faces=False), config, rt,
            CropCollate(config.crop_min, config.crop_max),
        )  # fmt: skip
        self.top1: tuple[int, float] | None = None

    def step(self) -> dict[str, float]:
        features, lengths, labels = (t.to(self.rt.device) for t in next(self.batches))
        loss = F.cross_entropy(self.ddp(features, lengths), labels)
        opt = self.optimizers["optimizer"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def report(self, step: int) -> dict:
        if self.top1 is None or self.top1[0] != step:
            self.top1 = (step, speaker_top1(self.model, self.val_ids, self.rt.device))
            print(f"step {step}: speaker-ID top-1 on held-out utterances = {self.top1[1]:.3f}")
        return {"speaker_top1": self.top1[1], "n_speakers": self.n_speakers}

    def close(self) -> None:
        self.batches.close()


@torch.no_grad()
def speaker_top1(model: SpeakerClassifier, identities: list[Identity], device: torch.device) -> float:
    """Share of held-out utterances whose speaker the classifier names first."""
    model.eval()
    correct = total = 0
    for label, ident in enumerate(identities):
        for voice in ident.voices:
            logits = model(voice_features(voice, model.encoder.front_end)[None].to(device))
            correct += int(logits.argmax(1).item() == label)
            total += 1
    model.train()
    return correct / max(total, 1)
