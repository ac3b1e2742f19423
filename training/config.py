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
    train_samples: int = 60_000  # synthetic faces per epoch (generated once, cached in memory)
    val_samples: int = 4_000  # held-out synthetic faces, another seed
    yaw_deg: float = 60.0  # head pose ranges (uniform, +-)
    pitch_deg: float = 30.0
    roll_deg: float = 20.0
    landmark_noise_px: float = 0.8  # landmark error per 256 px face crop (tools/measure_landmark_noise.py)
    neutral_fraction: float = 0.1  # faces with no emotion at all
    single_unit_fraction: float = 0.3  # faces driven by one random unit on top of the emotion
    real: bool = True  # the training people's photos and training clips of ../shared/data (issue 12)
    real_cache: str = ""  # perception cache of the real data; "" = ~/.cache/fields/real (or $FIELDS_REAL_CACHE)
    clip_step: int = 2  # every n-th tracked frame of the training clips (0: no clips)
    mirror: bool = True  # also train on every real face mirrored left-right (`training.augment`)
    affectnet_csv: str = ""  # AffectNet-layout CSV (emotion labels + 2D consistency), optional
    unlabelled: str = ""  # folder of images/videos (2D consistency only), optional
    cache: str = ""  # where the synthetic set is cached; "" = <out>/cache


@dataclass
class ModelConfig:
    hidden: int = 512  # width of the encoder MLP
    layers: int = 3
    dropout: float = 0.1


@dataclass
class LossConfig:
    units: float = 1.0  # (a) direct supervision on synthetic faces: the 52 units' squared error
    landmarks_3d: float = 1.0  # (a) ... and the landmark error (cm) they cause on the ICT head
    landmarks_2d: float = 2.0  # (b) 2D consistency on real faces (cm, identity and pose solved per face)
    # MediaPipe's own scores on real faces as unit labels, every unit (the units' scale there); blinks
    # included, although MediaPipe reads the ICT head's full blink as 0.64-0.77 (MODEL_CARD.md)
    pseudo: float = 20.0
    stability: float = 10.0  # real faces: units must not move when the input moves by perception's noise
    emotion: float = 1.0  # (d) intensity-aware emotion loss on synthetic faces (prototype labels)
    emotion_real: float = 1.5  # (c) class-balanced emotion loss on real labelled photos
    appearance: float = 0.2  # (c) L2 penalty on the appearance term of the emotion logits
    label_smoothing: float = 0.15  # (c) the real labels are noisy: part of each target is spread evenly
    intensity: float = 2.0  # (d) intensity regression where it is known
    exaggeration: float = 0.5  # (d) penalises expressions stronger than the labelled intensity implies


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when torch sees a GPU, else the CPU; or "cpu", "cuda"
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    epochs: int = 8  # over the synthetic set (the shipped run); about 10 minutes on 2 shared CPU cores
    real_batch: int = 256  # real faces drawn (with replacement) beside each synthetic batch
    ema: float = 0.995  # the weights shipped are an exponential moving average of the steps' (0: the last)
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
