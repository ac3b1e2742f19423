"""Synthetic faces with exact 3D ground truth: the direct supervision FIELDS needs.

For each sample: an identity from the ICT head's identity basis; an expression from the emotion
prototype table scaled by a sampled intensity, mixed with random single units, blinks, jaw and
gaze (52 ARKit units: the label itself, mapped onto the head by its ARKit table); a head pose
(yaw, pitch, roll) and a pinhole camera like MediaPipe's (63 degree vertical field of view); the
head's 478 landmarks (`training.ict`, exact at the embedding's points) projected into image pixels
with MediaPipe's landmark z convention; a noise
model for the landmark network's error; then the same perception features a real photo yields
(`inference.features`: pose-normalised metric landmarks and the blendshape network's scores on
the noisy landmarks). Deterministic under a seed. Generated in chunks, cached as .npz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from inference.expression.emotions import EMOTIONS, prototype
from inference.expression.features import geometry_features
from inference.head.forward import rodrigues
from inference.perception.blendshapes import ARKIT_NAMES, BlendshapeNetwork

from .config import DataConfig
from .ict import IctLandmarks

IMAGE_SIZE = 512
VERTICAL_FOV_DEGREES = 63.0  # MediaPipe's FaceLandmarker environment
FOCAL_PX = (IMAGE_SIZE / 2) / math.tan(math.radians(VERTICAL_FOV_DEGREES / 2))
GAZE_UNITS = [i for i, n in enumerate(ARKIT_NAMES) if n.startswith("eyeLook")]
BLINK = [ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight")]
JAW_OPEN = ARKIT_NAMES.index("jawOpen")
FREE_UNITS = [i for i, n in enumerate(ARKIT_NAMES) if n != "tongueOut" and i not in GAZE_UNITS]
IDENTITY_STD = 0.8
PROTOTYPES = np.stack([prototype(name) for name in EMOTIONS])  # (8, 52)


@dataclass
class Batch:
    features: np.ndarray  # (N, F) float32: what the encoder reads
    arkit: np.ndarray  # (N, 52) the ARKit units that made the face: the encoder's target
    shape: np.ndarray  # (N, n_shape) identity
    emotion: np.ndarray  # (N,) int 0..7
    intensity: np.ndarray  # (N,) 0..1
    head_pose: np.ndarray  # (N, 3) yaw, pitch, roll in radians


def sample_arkit(rng: np.random.Generator, config: DataConfig) -> tuple[np.ndarray, int, float]:
    """52 ARKit weights, the emotion class and its intensity."""
    if rng.random() < config.neutral_fraction:
        label, intensity = 0, 0.0
    else:
        label, intensity = int(rng.integers(1, len(EMOTIONS))), float(rng.uniform(0.0, 1.0))
    weights = intensity * PROTOTYPES[label]
    if rng.random() < config.single_unit_fraction:
        for unit in rng.choice(FREE_UNITS, size=int(rng.integers(1, 3)), replace=False):
            weights[unit] = max(weights[unit], rng.uniform(0.2, 1.0))
    # Sparse small activity everywhere: real faces are never exactly a prototype.
    mask = rng.random(len(weights)) < 0.08
    weights[mask] += rng.uniform(0.0, 0.25, mask.sum())
    if rng.random() < 0.3:
        blink = rng.uniform(0.0, 1.0)
        weights[BLINK] = np.clip(blink + rng.normal(0, 0.1, 2), 0, 1)
    if rng.random() < 0.25:
        weights[JAW_OPEN] = max(weights[JAW_OPEN], rng.uniform(0.0, 0.8))
    if rng.random() < 0.5:  # gaze: one horizontal and one vertical direction, both eyes together
        horizontal = rng.uniform(-0.7, 0.7)
        vertical = rng.uniform(-0.5, 0.5)
        for side in ("Left", "Right"):
            inward = ARKIT_NAMES.index(f"eyeLookIn{side}")
            outward = ARKIT_NAMES.index(f"eyeLookOut{side}")
            # Looking to the subject's left: the left eye looks out, the right eye in.
            toward_left = horizontal > 0
            weights[outward if (side == "Left") == toward_left else inward] = abs(horizontal)
            weights[ARKIT_NAMES.index(f"eyeLook{'Up' if vertical > 0 else 'Down'}{side}")] = abs(vertical)
    weights[ARKIT_NAMES.index("tongueOut")] = 0.0
    return np.clip(weights, 0.0, 1.0), label, intensity


def project(points: np.ndarray, yaw: float, pitch: float, roll: float, distance: float,
            offset: np.ndarray) -> np.ndarray:
    """Head-space points (metres) to MediaPipe-style landmarks (x, y, z in pixels) for a camera at
    the origin looking down -z; the head turned by yaw (about y), pitch (x), roll (z)."""
    rotation = rodrigues(np.array([0.0, 0.0, roll])) @ rodrigues(np.array([pitch, 0.0, 0.0])) \
        @ rodrigues(np.array([0.0, yaw, 0.0]))
    camera = points @ rotation.T + np.array([offset[0], offset[1], -distance])
    depth = -camera[:, 2]
    u = IMAGE_SIZE / 2 + FOCAL_PX * camera[:, 0] / depth
    v = IMAGE_SIZE / 2 - FOCAL_PX * camera[:, 1] / depth
    # MediaPipe's z: relative depth on the x scale, negative towards the camera.
    z = (depth - depth.mean()) * FOCAL_PX / distance
    return np.stack([u, v, z], axis=1)


def generate(head: IctLandmarks, count: int, seed: int, config: DataConfig,
             network: BlendshapeNetwork | None = None) -> Batch:
    """`count` faces of `head` (the ICT head at its landmarks), labelled by the units that made them."""
    rng = np.random.default_rng(seed)
    network = network or BlendshapeNetwork()
    limits = np.radians([config.yaw_deg, config.pitch_deg, config.roll_deg])
    columns: dict[str, list] = {name: [] for name in Batch.__dataclass_fields__}
    for _ in range(count):
        weights, label, intensity = sample_arkit(rng, config)
        # The ICT identity components are unit-scaled: most real faces lie within +-2.
        shape = np.clip(rng.normal(0.0, IDENTITY_STD, head.n_shape), -2.0, 2.0)
        pose = rng.uniform(-1.0, 1.0, 3) * limits
        face_px = rng.uniform(140.0, 380.0)  # face width in the image
        distance = FOCAL_PX * 0.15 / face_px
        offset = rng.uniform(-0.15, 0.15, 2) * distance
        landmarks = project(head.landmarks(weights, shape), pose[0], pose[1], pose[2], distance, offset)
        # The landmark network's error, measured per 256 px of its face crop (about 1.5 face widths).
        landmarks += rng.normal(0.0, config.landmark_noise_px * 1.5 * face_px / 256.0, landmarks.shape)
        scores = network.scores(landmarks)
        columns["features"].append(geometry_features(landmarks, scores, IMAGE_SIZE, IMAGE_SIZE))
        for name, value in (("arkit", weights), ("shape", shape), ("emotion", label), ("intensity", intensity),
                            ("head_pose", pose)):
            columns[name].append(value)
    arrays = {name: np.asarray(values) for name, values in columns.items()}
    arrays["features"] = arrays["features"].astype(np.float32)
    return Batch(**arrays)
