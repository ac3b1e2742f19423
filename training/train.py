"""The FIELDS training run (issue 12): one stage in which every step sees a batch of synthetic ICT-
head faces and a batch of real training faces, with (a) direct supervision and (d) the intensity-
aware emotion loss on the synthetic batch, and (b) 2D consistency, (c) real emotion labels and the
weak MediaPipe pseudo-label on the real one (`training.losses`); then evaluation and export.

Runs on one CPU or GPU, or on several processes under `torchrun` (DistributedDataParallel: gloo
on the CPU, NCCL on GPUs); each process trains on its own shard of the synthetic data and only
rank 0 writes. Outputs are written to a temporary file and renamed, so a failed run leaves no
half-written checkpoint or ONNX file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import distributed as dist

from inference.expression.emotions import EMOTIONS
from inference.expression.features import N_GEOMETRY
from inference.files import write_with
from inference.perception.blendshapes import ARKIT_NAMES
from inference.perception.landmarks import N_LANDMARKS

from . import losses
from .config import ConfigError, TrainConfig, save_config, to_dict
from .data import RealFaces, real_training_faces, synthetic
from .export import export
from .ict import ICT_EMBEDDING, ICT_HEAD, IctLandmarks, TorchIctLandmarks
from .model import Encoder
from .synthetic import PROTOTYPES, Batch

MAX_CLASS_WEIGHT = 5.0
JAW = 2  # FLAME's joint order: root, neck, jaw, eye.L, eye.R
# Perception's frame-to-frame noise on a still face, as the stability term perturbs real inputs:
# landmarks in the pose-normalised frame (cm; 0.8 px per 256 px crop of a 15 cm face is ~0.06 cm)
# and MediaPipe's scores (their own jitter on the talking clips' still stretches is ~0.005 per frame).
STABILITY_NOISE_CM = 0.06
STABILITY_NOISE_SCORES = 0.01


def _tensors(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    out = {name: torch.as_tensor(getattr(batch, name)).float().to(device)
           for name in ("features", "arkit", "shape", "intensity")}
    out["emotion"] = torch.as_tensor(batch.emotion).long().to(device)
    return out


def _extra_sources(config: TrainConfig, cache: Path, log: Any) -> list[RealFaces]:
    """Optional AffectNet-layout and unlabelled sources, as real faces (labels where they have them)."""
    from .adapters import FeatureCache, load_affectnet, load_unlabelled
    from .readers import mediapipe_arkit

    features = FeatureCache(cache / "perception")
    out = []
    for path, loader in ((config.data.affectnet_csv, load_affectnet), (config.data.unlabelled, load_unlabelled)):
        if path:
            data = loader(Path(path), features)
            skipped = ", ".join(f"{n} {why}" for why, n in data.skipped.items() if n) or "none"
            log(f"data: {len(data.features)} faces from {data.source} (skipped: {skipped})")
            emotion = data.emotion if data.emotion is not None else np.full(len(data.features), -1)
            # The geometry ends with MediaPipe's 52 scores: the pseudo-label comes with them.
            scores = data.features[:, N_LANDMARKS * 3:N_GEOMETRY]
            out.append(RealFaces(data.features, mediapipe_arkit(scores), emotion, data.source))
    return out


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for, but torch sees no CUDA GPU here")
    return name


def _rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclasses.dataclass
class Setup:
    """Everything a run trains on, assembled once: this process's shard of the synthetic data, the
    real faces, and the fixed modules the losses need."""

    data: dict[str, torch.Tensor]  # this rank's synthetic rows
    real: dict[str, torch.Tensor]  # features, mediapipe (52 units), emotion (-1: none)
    val_set: Batch
    unit_basis: torch.Tensor  # (52, 478, 3) cm
    consistency: losses.Consistency | None
    class_weights: torch.Tensor  # (8,) balanced weights of the real labels
    prototypes: torch.Tensor  # (8, 52)


def _real(config: TrainConfig, cache: Path, log: Any) -> RealFaces | None:
    sources = ([real_training_faces(config.data, log)] if config.data.real else []) + \
        _extra_sources(config, cache, log)
    if not sources:
        return None
    for source in sources:
        log(f"data: real faces: {source.source}")
    return RealFaces(np.concatenate([s.features for s in sources]), np.concatenate([s.mediapipe for s in sources]),
                     np.concatenate([s.emotion for s in sources]), "; ".join(s.source for s in sources))


def assemble(config: TrainConfig, device: torch.device, rank: int, world: int, log: Any) -> Setup:
    out = Path(config.out)
    cache = Path(config.data.cache) if config.data.cache else out / "cache"
    started = time.perf_counter()
    train_set = synthetic(config.data.train_samples, config.seed, config.data, cache)
    val_set = synthetic(config.data.val_samples, config.seed + 1, config.data, cache)
    log(f"data: {len(train_set.features)} train, {len(val_set.features)} val synthetic faces "
        f"({time.perf_counter() - started:.0f} s)")
    data = _tensors(train_set, device)
    shard = torch.arange(rank, len(data["features"]), world)
    head = IctLandmarks()
    real = _real(config, cache, log)
    counts = np.ones(len(EMOTIONS))
    consistency = None
    real_tensors: dict[str, torch.Tensor] = {}
    if real is not None:
        real_tensors = {"features": torch.as_tensor(real.features).float().to(device),
                        "mediapipe": torch.as_tensor(real.mediapipe).float().to(device),
                        "emotion": torch.as_tensor(real.emotion).long().to(device)}
        labelled = real.emotion[real.emotion >= 0]
        counts = np.bincount(labelled, minlength=len(EMOTIONS)).astype(np.float64) if len(labelled) else counts
        mean_face = real.features[:, : N_LANDMARKS * 3].reshape(-1, N_LANDMARKS, 3).mean(0)
        consistency = losses.Consistency(head, mean_face.astype(np.float64)).to(device)
    # Balanced classes: each class weighs as much in total, up to MAX_CLASS_WEIGHT (a class of a
    # handful of noisy photos, contempt's 9, must not dominate: its synthetic prototype teaches it
    # too); scaled so the average photo weighs 1.
    weights = np.minimum(counts.sum() / (len(counts) * np.maximum(counts, 1.0)), MAX_CLASS_WEIGHT)
    weights /= (weights * counts).sum() / counts.sum()
    return Setup({name: value[shard] for name, value in data.items()}, real_tensors, val_set,
                 torch.as_tensor(head.unit_basis * 100.0).float().to(device), consistency,
                 torch.as_tensor(weights).float().to(device),
                 torch.as_tensor(PROTOTYPES).float().to(device))


def step_losses(net: torch.nn.Module, batch: dict[str, torch.Tensor], real: dict[str, torch.Tensor] | None,
                setup: Setup, config: TrainConfig) -> dict[str, torch.Tensor]:
    """One step's named loss terms; `weighted` sums them with the config's weights. Synthetic faces
    (geometry only) and real ones (with their appearance) go through the encoder separately."""
    units, logits, intensity = net(batch["features"])
    terms = {name: value.mean() for name, value in
             losses.direct_3d(units, batch["arkit"], setup.unit_basis).items()}
    terms.update({name: value.mean() for name, value in
                  losses.emotion(logits, intensity, units, batch["emotion"], batch["intensity"],
                                 setup.prototypes).items()})
    if real is not None and setup.consistency is not None:
        units, logits, intensity = net(real["features"])
        observed = real["features"][:, : N_LANDMARKS * 3].reshape(-1, N_LANDMARKS, 3)
        terms["stability"] = (net(jittered(real["features"][:, :N_GEOMETRY]))[0] - units.detach()).square().mean()
        terms["landmarks_2d"] = setup.consistency(units, observed).mean()
        terms["pseudo"] = (units - real["mediapipe"]).square().mean()
        labelled = real["emotion"] >= 0
        terms["emotion_real"] = losses.real_emotion(logits, real["emotion"], setup.class_weights,
                                                    config.loss.label_smoothing).sum() / labelled.sum().clamp_min(1)
        # The appearance term is fitted on a few thousand photos: an L2 penalty keeps it small.
        encoder = cast(Encoder, getattr(net, "module", net))  # DistributedDataParallel wraps it
        terms["appearance"] = encoder.appearance.weight.square().sum()
        # (d) on real faces: the intensity agrees with the expression's size, its units' projection
        # onto the labelled class's prototype (not pushed by it: detached); neutral means none.
        proto = setup.prototypes[real["emotion"].clamp_min(0)]
        size = ((units.detach() * proto).sum(1) / proto.square().sum(1).clamp_min(1e-9)).clamp(0, 1)
        size = torch.where(real["emotion"] == EMOTIONS.index("neutral"), torch.zeros_like(size), size)
        terms["intensity"] = terms["intensity"] + losses.masked_mean((intensity[:, 0] - size).abs(), labelled)
    return terms


def jittered(geometry: torch.Tensor) -> torch.Tensor:
    """Real faces' geometry features moved by perception's noise (`STABILITY_NOISE_*`)."""
    scale = torch.full_like(geometry[:1], STABILITY_NOISE_CM)
    scale[:, N_LANDMARKS * 3:] = STABILITY_NOISE_SCORES
    return geometry + torch.randn_like(geometry) * scale


def weighted(terms: dict[str, torch.Tensor], config: TrainConfig) -> torch.Tensor:
    """The loss: each term times the config's weight of the same name."""
    return sum((getattr(config.loss, name) * value for name, value in terms.items()),
               start=torch.zeros((), device=next(iter(terms.values())).device))


def fit(config: TrainConfig, encoder: Encoder, setup: Setup, device: torch.device, rank: int, world: int,
        log: Any) -> list[dict[str, float]]:
    """The training loop; returns the mean of each loss term per epoch. With `config.ema` the
    encoder ends with the moving average of its weights, not the last step's."""
    data, real = setup.data, setup.real
    net: torch.nn.Module = encoder
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(encoder)
    history = []
    steps_per_epoch = max(1, len(data["features"]) // config.batch_size)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed + rank)
    average = None
    if config.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        average = AveragedModel(encoder, multi_avg_fn=get_ema_multi_avg_fn(config.ema))
    for epoch in range(config.epochs):
        net.train()
        order = torch.randperm(len(data["features"]), generator=generator).to(device)
        sums: dict[str, float] = {}
        for step in range(steps_per_epoch):
            index = order[step * config.batch_size:(step + 1) * config.batch_size]
            real_batch = None
            if real:
                pick = torch.randint(len(real["features"]), (config.real_batch,), generator=generator).to(device)
                real_batch = {name: value[pick] for name, value in real.items()}
            terms = step_losses(net, {name: value[index] for name, value in data.items()}, real_batch, setup, config)
            optimiser.zero_grad(set_to_none=True)
            weighted(terms, config).backward()
            optimiser.step()
            schedule.step()
            if average is not None:
                average.update_parameters(encoder)
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.item()
        means = {name: value / steps_per_epoch for name, value in sums.items()}
        history.append(means)
        if rank == 0:
            log(f"epoch {epoch + 1}/{config.epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))
    if average is not None:
        encoder.load_state_dict(average.module.state_dict())
    return history


def train(config: TrainConfig, log: Any = print) -> dict[str, Any]:
    if os.environ.get("WORLD_SIZE", "1") != "1" and not dist.is_initialized():
        dist.init_process_group("nccl" if resolve_device(config.device) == "cuda" else "gloo")
    rank, world = _rank()
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device(resolve_device(config.device))
    started = time.perf_counter()
    setup = assemble(config, device, rank, world, log)
    encoder = Encoder(config.model.hidden, config.model.layers, config.model.dropout).to(device)
    # The geometry is standardised over the synthetic faces, the appearance over the real ones
    # (without real faces it stays 0 and 1, and the appearance term at zero).
    geometry, mean, std = setup.data["features"], encoder.mean.clone(), encoder.std.clone()
    mean[:N_GEOMETRY], std[:N_GEOMETRY] = geometry.mean(0), geometry.std(0)
    if setup.real:
        appearance = setup.real["features"][:, N_GEOMETRY:]
        mean[N_GEOMETRY:], std[N_GEOMETRY:] = appearance.mean(0), appearance.std(0)
    encoder.set_normalisation(mean, std)
    history = fit(config, encoder, setup, device, rank, world, log)

    metrics = evaluate(encoder, setup.val_set, device)
    metrics["train_seconds"] = time.perf_counter() - started
    if rank == 0:
        from .real_photos import real_photo_metrics

        metrics.update(real_photo_metrics(encoder, ARKIT_NAMES))
        _write_outputs(config, encoder, export_sample(encoder, setup), metrics, history)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


@torch.no_grad()
def evaluate(encoder: Encoder, batch: Batch, device: torch.device) -> dict[str, float]:
    """The held-out metrics on a synthetic set (the model card's targets)."""
    encoder.eval()
    data = _tensors(batch, device)
    head = TorchIctLandmarks(IctLandmarks()).to(device)
    pred = encoder.named(data["features"])
    units, target = pred["units"], data["arkit"]
    # Expression error at the landmarks' points: shape keys only (jaw and eyes at rest).
    still = torch.tensor([0.0 if head.pose[u].abs().sum() > 0 else 1.0 for u in range(len(ARKIT_NAMES))],
                         device=device)
    got, want = head(units * still, data["shape"]), head(target * still, data["shape"])
    jaw = torch.einsum("bu,ud->bd", units - target, head.pose[:, JAW])
    eyelids = (units - target) @ head.eyelids
    label = data["emotion"]
    strong = data["intensity"] >= 0.5
    accuracy = float((pred["emotion_logits"].argmax(1) == label)[strong].float().mean())
    target_intensity = torch.where(label == 0, torch.zeros_like(data["intensity"]), data["intensity"])
    return {"units_mae": float((units - target).abs().mean()),
            "expression_landmark_mm": float((got - want).norm(dim=-1).mean() * 10),
            "jaw_deg": float(torch.rad2deg(jaw.norm(dim=-1)).mean()),
            "eyelid_mae": float(eyelids.abs().mean()),
            "emotion_accuracy_strong": accuracy,
            "intensity_mae": float((pred["intensity"][:, 0] - target_intensity).abs().mean())}


def head_contract() -> dict[str, Any]:
    """The head the encoder was trained for, as its metadata states it."""
    from inference.head.face_model import file_sha256

    return {"name": IctLandmarks().name, "file": ICT_HEAD.name, "sha256": file_sha256(ICT_HEAD),
            "embedding": {"file": ICT_EMBEDDING.name, "sha256": file_sha256(ICT_EMBEDDING)}}


def export_sample(encoder: Encoder, setup: Setup, count: int = 256) -> torch.Tensor:
    """Whole inputs to check the ONNX export on: real faces where there are some, else held-out
    synthetic ones with the mean appearance."""
    if setup.real:
        return setup.real["features"][:count].cpu()
    geometry = torch.as_tensor(setup.val_set.features[:count]).float()
    return torch.cat([geometry, encoder.mean[N_GEOMETRY:].cpu().expand(len(geometry), -1)], dim=1)


def _write_outputs(config: TrainConfig, encoder: Encoder, sample: torch.Tensor, metrics: dict[str, Any],
                   history: list[dict[str, float]]) -> None:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_with(out / "encoder.pt", lambda tmp: torch.save({"state_dict": encoder.state_dict(),
                                                           "config": to_dict(config)}, tmp))
    save_config(config, out / "config.yaml")
    metadata = {
        "normalisation": "built into the graph: (features - mean) / std, see training/model.py",
        "features": "inference.expression.features.encoder_input",
        "units": list(ARKIT_NAMES),
        "head": head_contract(),
        "config": dataclasses.asdict(config),
        "metrics": metrics,
        "history": history,
    }
    worst = export(encoder, out / "encoder.onnx", metadata, sample)
    (out / "metrics.json").write_text(json.dumps({**metrics, "onnx_vs_torch_max_abs": worst}, indent=2) + "\n")


def load_trained(folder: Path) -> tuple[Encoder, TrainConfig]:
    """A trained encoder (folder with encoder.pt and config.yaml) and its config."""
    from .config import load_config

    checkpoint_path, config_path = folder / "encoder.pt", folder / "config.yaml"
    for path in (checkpoint_path, config_path):
        if not path.is_file():
            raise ConfigError(f"Weights folder '{folder}' has no {path.name}")
    config = load_config(config_path)
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)["state_dict"]
    encoder = Encoder(config.model.hidden, config.model.layers, config.model.dropout)
    encoder.load_state_dict(state)
    return encoder.eval(), config


def evaluate_folder(folder: Path) -> dict[str, Any]:
    """Re-evaluate a trained encoder on its held-out synthetic set."""
    encoder, config = load_trained(folder)
    cache = Path(config.data.cache) if config.data.cache else Path(config.out) / "cache"
    val_set = synthetic(config.data.val_samples, config.seed + 1, config.data, cache)
    from .real_photos import real_photo_metrics

    metrics = evaluate(encoder, val_set, torch.device("cpu"))
    return {**metrics, **real_photo_metrics(encoder, ARKIT_NAMES)}
