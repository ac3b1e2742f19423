"""Training configuration: one dataclass tree with commented defaults, strict YAML overrides.

An unknown key, in a YAML file or a `key=value` override, is an error that names the key and the
keys that do exist (SMIRK's OmegaConf struct mode, without the dependency). The resolved config is
saved next to the weights. No absolute paths in defaults: paths are relative to the working
directory or given by the user.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inference.errors import FieldsError


class ConfigError(FieldsError):
    """A config file or override names a key that does not exist, or gives a value of the wrong type."""


@dataclass
class DataConfig:
    train_samples: int = 120_000  # synthetic faces per epoch (generated once, cached in memory)
    val_samples: int = 4_000  # held-out synthetic faces, another seed
    yaw_deg: float = 60.0  # head pose ranges (uniform, +-)
    pitch_deg: float = 30.0
    roll_deg: float = 20.0
    landmark_noise_px: float = 0.8  # landmark error per 256 px face crop (tools/measure_landmark_noise.py)
    neutral_fraction: float = 0.1  # faces with no emotion at all
    single_unit_fraction: float = 0.3  # faces driven by one random unit on top of the emotion
    scans: str = ""  # folder of 4D-scan .npz sequences (direct supervision), optional
    affectnet_csv: str = ""  # AffectNet-layout CSV (emotion branch), optional
    unlabelled: str = ""  # folder of images/videos (2D consistency only), optional
    landmark_embedding: str = ""  # a FLAME face_model's mediapipe_landmark_embedding.npz (required then)


@dataclass
class ModelConfig:
    hidden: int = 512  # width of the encoder MLP
    layers: int = 3
    dropout: float = 0.1


@dataclass
class LossConfig:
    params: float = 1.0  # direct 3D supervision: parameter error
    vertices: float = 10.0  # ... and the vertex error it causes through the model's basis (per cm)
    jaw: float = 1.0
    eyelids: float = 10.0  # small targets: without this weight the vertex term drowns them
    gaze: float = 5.0
    landmarks_2d: float = 1.0  # self-supervised 2D consistency (reprojected landmarks)
    emotion: float = 2.0  # intensity-aware emotion loss (stage 2)
    intensity: float = 5.0
    exaggeration: float = 0.5  # penalises expressions stronger than the labelled intensity implies
    anchor: float = 1.0  # stage 2: keep the expression close to the stage-one model


@dataclass
class TrainConfig:
    face_model: str = "default"  # "default" (the open head) or a FLAME-format file (+ data.landmark_embedding)
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when torch sees a GPU, else the CPU; or "cpu", "cuda"
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    stage1_epochs: int = 12  # losses 1 + 2
    stage2_epochs: int = 6  # the emotion branch joins, anchored to stage one
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    out: str = "out/train"  # checkpoint, ONNX, metadata and the resolved config land here
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)


def _apply(target: Any, values: dict[str, Any], where: str, section: str = "") -> None:
    names = {f.name: f for f in dataclasses.fields(target)}
    for key, value in values.items():
        if key not in names:
            scope = f" in '{section.rstrip('.')}'" if section else ""
            raise ConfigError(f"{where}: unknown key '{section}{key}' (known{scope}: {', '.join(sorted(names))})")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{section}{key}' is a section, give it a mapping")
            _apply(current, value, where, f"{section}{key}.")
        else:
            setattr(target, key, _coerce(value, type(current), f"{where}: '{section}{key}'"))


def _coerce(value: Any, kind: type, where: str) -> Any:
    if isinstance(value, str) and kind in (int, float):
        try:  # YAML 1.1 reads "1e-3" as a string
            value = kind(value)
        except ValueError:
            pass
    elif isinstance(value, str) and kind is not str:
        value = yaml.safe_load(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] = ()) -> TrainConfig:  # type: ignore[assignment]
    """Defaults, then the YAML file, then `section.key=value` overrides, each checked strictly."""
    config = TrainConfig()
    if path:
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"Config '{path}' cannot be read: {exc}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"Config '{path}' must be a mapping of keys to values")
        _apply(config, values, f"Config '{path}'")
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise ConfigError(f"Override '{override}' must look like section.key=value")
        nested: dict[str, Any] = {}
        cursor = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = value
        _apply(config, nested, f"Override '{override}'")
    return config


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: TrainConfig, path: Path) -> None:
    from inference.files import write_atomic

    write_atomic(path, yaml.safe_dump(to_dict(config), sort_keys=False).encode())
