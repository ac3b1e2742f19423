"""The FIELDS training run: stage one (direct 3D supervision + 2D consistency), stage two (the
emotion branch joins, anchored to the stage-one model), evaluation, export.

Runs on one CPU or GPU, or on several processes under `torchrun` (DistributedDataParallel: gloo
on the CPU, NCCL on GPUs); each process trains on its own shard of the in-memory data and only
rank 0 writes. Outputs are written to a temporary file and renamed, so a failed run leaves no
half-written checkpoint or ONNX file.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import distributed as dist

from inference.files import write_with
from inference.head.default_head import HEAD_FILE, arkit_mapping
from inference.head.face_model import file_sha256, load_face_model
from inference.perception.landmarks import N_LANDMARKS

from . import losses
from .adapters import RealData
from .config import ConfigError, LossConfig, TrainConfig, save_config, to_dict
from .data import retargeter_for, synthetic
from .export import export
from .flame_torch import TorchFlame
from .model import Encoder
from .synthetic import PROTOTYPES, Batch


def _tensors(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    out = {name: torch.as_tensor(getattr(batch, name)).float().to(device) for name in
           ("features", "shape", "expression", "jaw", "gaze", "eyelids", "intensity")}
    out["emotion"] = torch.as_tensor(batch.emotion).long().to(device)
    count = len(batch.features)
    out["has_params"] = torch.ones(count, dtype=torch.bool, device=device)
    out["has_emotion"] = torch.ones(count, dtype=torch.bool, device=device)
    return out


def _real_tensors(data: RealData, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A real source's rows in the synthetic layout: missing labels are zeros, masked out."""
    count = len(data.features)
    out = {name: torch.zeros((count, *value.shape[1:]), dtype=value.dtype, device=value.device)
           for name, value in like.items()}
    out["features"] = torch.as_tensor(data.features).float().to(out["features"].device)
    for name in ("expression", "jaw", "eyelids", "gaze"):
        value = getattr(data, name)
        if value is not None:
            out[name] = torch.as_tensor(value).float().to(out[name].device)
    out["has_params"] = torch.full((count,), data.expression is not None, device=out["features"].device)
    if data.emotion is not None:
        out["emotion"] = torch.as_tensor(data.emotion).long().to(out["features"].device)
        out["intensity"] = torch.as_tensor(data.intensity).float().to(out["features"].device)
    out["has_emotion"] = torch.full((count,), data.emotion is not None, device=out["features"].device)
    return out


def _real_sources(config: TrainConfig, cache: Path, log: Any) -> list[RealData]:
    from .adapters import FeatureCache, load_affectnet, load_scans, load_unlabelled

    features = FeatureCache(cache / "perception")
    sources = []
    for path, loader in ((config.data.scans, load_scans), (config.data.affectnet_csv, load_affectnet),
                         (config.data.unlabelled, load_unlabelled)):
        if path:
            data = loader(Path(path), features)
            skipped = ", ".join(f"{n} {why}" for why, n in data.skipped.items() if n) or "none"
            log(f"data: {len(data.features)} faces from {data.source} (skipped: {skipped})")
            sources.append(data)
    return sources


def _landmark_points(model_path: str, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The trained model's surface points for MediaPipe's landmarks (see losses.landmark_consistency)."""
    retargeter = retargeter_for(model_path, config.data)
    if retargeter is None:  # the open head: landmark i is vertex i
        ids = np.arange(N_LANDMARKS)
        return (np.repeat(ids[:, None], 3, axis=1), np.tile([1.0, 0.0, 0.0], (N_LANDMARKS, 1)).astype(np.float32),
                ids)
    target = retargeter.correspondence.target
    return target.vertices, target.weights.astype(np.float32), target.labels


def _prototypes(model_path: str, config: TrainConfig) -> np.ndarray:
    """(8, n_expr): each emotion's full prototype in the trained model's expression parameters."""
    head = load_face_model(HEAD_FILE)
    mapping = arkit_mapping(head)
    retargeter = retargeter_for(model_path, config.data)
    if retargeter is None:
        return PROTOTYPES @ mapping.expression
    solved = []
    for weights in PROTOTYPES:
        params = mapping.to_params(weights)
        solved.append(retargeter.retarget(params.expression, params.pose, params.eyelids).expression)
    return np.stack(solved)


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


def _jaw_open_sign(model_path: str) -> float:
    """+1 if a positive x rotation of the jaw opens the mouth (moves the chin down), else -1."""
    from inference.head.forward import forward

    model = load_face_model(model_path)
    pose = np.zeros((5, 3))
    pose[2, 0] = 0.2
    moved = forward(model, pose=pose).vertices - model.v_template
    chin = np.argmax(model.weights[:, 2])
    return 1.0 if moved[chin, 1] < 0 else -1.0


@dataclasses.dataclass
class Setup:
    """Everything a run trains on, assembled once: this process's shard of the data, the model
    and the fixed tensors its losses need."""

    model_path: str
    face_model: Any
    data: dict[str, torch.Tensor]  # this rank's rows, the synthetic layout (labels masked where missing)
    val_set: Batch
    flame: TorchFlame
    points: tuple[torch.Tensor, ...]  # the model's surface points for MediaPipe's landmarks
    prototypes: torch.Tensor  # (8, n_expr)


def assemble(config: TrainConfig, device: torch.device, rank: int, world: int, log: Any) -> Setup:
    """The synthetic train and validation sets plus any real sources, sharded by rank."""
    model_path = str(HEAD_FILE) if config.face_model == "default" else config.face_model
    face_model = load_face_model(model_path)
    out = Path(config.out)
    started = time.perf_counter()
    train_set = synthetic(model_path, config.data.train_samples, config.seed, config.data, out / "cache")
    val_set = synthetic(model_path, config.data.val_samples, config.seed + 1, config.data, out / "cache")
    log(f"data: {len(train_set.features)} train, {len(val_set.features)} val faces "
        f"({time.perf_counter() - started:.0f} s)")
    data = _tensors(train_set, device)
    for source in _real_sources(config, out / "cache", log):
        extra = _real_tensors(source, data)
        data = {name: torch.cat([data[name], extra[name]]) for name in data}
    shard = torch.arange(rank, len(data["features"]), world)
    return Setup(model_path, face_model, {name: value[shard] for name, value in data.items()}, val_set,
                 TorchFlame(face_model).to(device),
                 tuple(torch.as_tensor(a).to(device) for a in _landmark_points(model_path, config)),
                 torch.as_tensor(_prototypes(model_path, config)).float().to(device))


def step_losses(net: torch.nn.Module, batch: dict[str, torch.Tensor], setup: Setup,
                anchor: Encoder | None) -> dict[str, torch.Tensor]:
    """One batch's named loss terms (stage two when `anchor` is given); `weighted` sums them."""
    pred = dict(zip(("expression", "jaw", "eyelids", "gaze", "emotion_logits", "intensity"),
                    net(batch["features"]), strict=True))
    observed = batch["features"][:, : N_LANDMARKS * 3].reshape(-1, N_LANDMARKS, 3)
    terms = {name: losses.masked_mean(value, batch["has_params"])
             for name, value in losses.direct_3d(pred, batch, setup.flame).items()}
    terms["landmarks_2d"] = losses.landmark_consistency(pred, observed, setup.flame, setup.points,  # type: ignore[arg-type]
                                                        batch["shape"]).mean()
    if anchor is not None:
        emotion_terms = losses.emotion(pred["emotion_logits"], pred["intensity"], pred["expression"],
                                       batch["emotion"], batch["intensity"], setup.prototypes)
        terms.update({name: losses.masked_mean(value, batch["has_emotion"]) for name, value in emotion_terms.items()})
        with torch.no_grad():
            anchored = anchor(batch["features"])[0]
        terms["anchor"] = (pred["expression"] - anchored).square().mean()
    return terms


def weighted(terms: dict[str, torch.Tensor], weights: LossConfig) -> torch.Tensor:
    """The loss: each term times the config's weight of the same name."""
    return sum((getattr(weights, name) * value for name, value in terms.items()),
               start=torch.zeros((), device=next(iter(terms.values())).device))


def fit(config: TrainConfig, encoder: Encoder, setup: Setup, device: torch.device, rank: int, world: int,
        log: Any) -> list[dict[str, float]]:
    """The two-stage loop; returns the mean of each loss term per epoch."""
    data = setup.data
    net: torch.nn.Module = encoder
    if world > 1:
        # Stage one leaves the emotion branch unused; DDP must not wait for its gradients.
        net = torch.nn.parallel.DistributedDataParallel(encoder, find_unused_parameters=True)
    anchor: Encoder | None = None
    history = []
    total_epochs = config.stage1_epochs + config.stage2_epochs
    steps_per_epoch = max(1, len(data["features"]) // config.batch_size)

    def stage_optimiser(epochs: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        # Each stage gets its own warm-up and annealing: run under one schedule, stage two would
        # train the emotion branch in the schedule's near-zero tail.
        optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps = epochs * steps_per_epoch
        return optimiser, torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=steps)

    optimiser, schedule = stage_optimiser(max(1, config.stage1_epochs))
    generator = torch.Generator().manual_seed(config.seed + rank)
    for epoch in range(total_epochs):
        stage_two = epoch >= config.stage1_epochs
        if stage_two and anchor is None:
            anchor = copy.deepcopy(encoder).eval()
            for parameter in anchor.parameters():
                parameter.requires_grad_(False)
            optimiser, schedule = stage_optimiser(config.stage2_epochs)
        net.train()
        order = torch.randperm(len(data["features"]), generator=generator).to(device)
        sums: dict[str, float] = {}
        for step in range(steps_per_epoch):
            index = order[step * config.batch_size:(step + 1) * config.batch_size]
            terms = step_losses(net, {name: value[index] for name, value in data.items()}, setup, anchor)
            optimiser.zero_grad(set_to_none=True)
            weighted(terms, config.loss).backward()
            optimiser.step()
            schedule.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.item()
        means = {name: value / steps_per_epoch for name, value in sums.items()}
        history.append(means)
        if rank == 0:
            log(f"epoch {epoch + 1}/{total_epochs} ({'stage 2' if stage_two else 'stage 1'}): "
                + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))
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
    features = setup.data["features"]
    encoder = Encoder(features.shape[1], setup.face_model.n_expr, config.model.hidden, config.model.layers,
                      config.model.dropout, _jaw_open_sign(setup.model_path)).to(device)
    encoder.set_normalisation(features.mean(0), features.std(0))
    history = fit(config, encoder, setup, device, rank, world, log)

    metrics = evaluate(encoder, setup.val_set, setup.face_model, device)
    metrics["train_seconds"] = time.perf_counter() - started
    if rank == 0:
        from .real_photos import real_photo_metrics

        metrics.update(real_photo_metrics(encoder, setup.face_model.expression_names))
        _write_outputs(config, encoder, setup.val_set, setup.model_path, metrics, history)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


@torch.no_grad()
def evaluate(encoder: Encoder, batch: Batch, face_model: Any, device: torch.device) -> dict[str, float]:
    """The issue's held-out metrics on a synthetic set."""
    encoder.eval()
    data = _tensors(batch, device)
    flame = TorchFlame(face_model).to(device)
    pred = encoder.named(data["features"])
    zero_pose = torch.zeros_like(data["jaw"])
    zero_gaze = torch.zeros_like(data["gaze"])
    # Expression vertex error: expression only (jaw and eyes at rest), identity as in the sample.
    got, _ = flame(pred["expression"], losses.flame_pose(zero_pose, zero_gaze), data["shape"])
    want, _ = flame(data["expression"], losses.flame_pose(zero_pose, zero_gaze), data["shape"])
    vertex_mm = float((got - want).norm(dim=-1).mean() * 1000)
    jaw_deg = float(torch.rad2deg((pred["jaw"] - data["jaw"]).norm(dim=-1)).mean())
    eyelid_mae = float((pred["eyelids"] - data["eyelids"]).abs().mean())
    label = data["emotion"]
    strong = data["intensity"] >= 0.5
    accuracy = float((pred["emotion_logits"].argmax(1) == label)[strong].float().mean())
    target_intensity = torch.where(label == 0, torch.zeros_like(data["intensity"]), data["intensity"])
    intensity_mae = float((pred["intensity"][:, 0] - target_intensity).abs().mean())
    return {"expression_vertex_mm": vertex_mm, "jaw_deg": jaw_deg, "eyelid_mae": eyelid_mae,
            "emotion_accuracy_strong": accuracy, "intensity_mae": intensity_mae}


def _write_outputs(config: TrainConfig, encoder: Encoder, val_set: Batch, model_path: str,
                   metrics: dict[str, Any], history: list[dict[str, float]]) -> None:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_with(out / "encoder.pt", lambda tmp: torch.save({"state_dict": encoder.state_dict(),
                                                           "config": to_dict(config)}, tmp))
    save_config(config, out / "config.yaml")
    face = load_face_model(model_path)
    metadata = {
        "normalisation": "built into the graph: (features - mean) / std, see training/model.py",
        "features": "inference.expression.features.encoder_input",
        "face_model": {"name": face.name, "file": Path(model_path).name, "sha256": file_sha256(model_path),
                       "n_expr": face.n_expr, "expression_names": list(face.expression_names)},
        "config": dataclasses.asdict(config),
        "metrics": metrics,
        "history": history,
    }
    worst = export(encoder, out / "encoder.onnx", metadata,
                   torch.as_tensor(val_set.features[:256]).float())
    (out / "metrics.json").write_text(json.dumps({**metrics, "onnx_vs_torch_max_abs": worst}, indent=2) + "\n")


def evaluate_folder(folder: Path) -> dict[str, Any]:
    """Re-evaluate a trained encoder (folder with encoder.pt and config.yaml) on its held-out set."""
    from .config import load_config

    checkpoint_path, config_path = folder / "encoder.pt", folder / "config.yaml"
    for path in (checkpoint_path, config_path):
        if not path.is_file():
            raise ConfigError(f"Weights folder '{folder}' has no {path.name}")
    config = load_config(config_path)
    model_path = str(HEAD_FILE) if config.face_model == "default" else config.face_model
    face_model = load_face_model(model_path)
    val_set = synthetic(model_path, config.data.val_samples, config.seed + 1, config.data, Path(config.out) / "cache")
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)["state_dict"]
    encoder = Encoder(val_set.features.shape[1], face_model.n_expr, config.model.hidden, config.model.layers,
                      config.model.dropout)
    encoder.load_state_dict(state)
    from .real_photos import real_photo_metrics

    metrics = evaluate(encoder, val_set, face_model, torch.device("cpu"))
    return {**metrics, **real_photo_metrics(encoder, face_model.expression_names)}
