"""How ARKit weights drive a FIELDS head, and the retired open mask head (`models/fields_head.npz`).

The ARKit table below serves every head whose file carries `arkit_pose` (the ICT head, the default
since issue 11, and the mask head). The mask head is a FLAME-format model derived from MediaPipe's
Apache-2.0 canonical face (vertex i is MediaPipe landmark i for all 478 landmarks); its generator
is retired with it (in git history before issue 11 closed). It stays in the package, frozen, so heads
built from it in saved .blend files still reconstruct and the previous encoder stays measurable as
a baseline (`python -m training evaluate-real --readers previous=...`). This module
holds what training, the demo and the add-on share about it: the file's path, `ARKIT_TO_PARAMS`
(which head parameter each of the 52 ARKit units drives: an expression shape key, a joint rotation
or an eyelid shape), the conversion of a 52-vector of ARKit weights into FLAME parameters and back,
and the one fixed frontal projection the head is calibrated and judged under. The per-unit joint
angles are calibrated by the generator and stored in the file (`arkit_pose`), not here, so the
table and the model cannot drift apart. Must not import bpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..perception.blendshapes import ARKIT_NAMES
from ..perception.landmarks import N_LANDMARKS  # the head's first N_LANDMARKS vertices are MediaPipe's landmarks
from .face_model import JOINT_NAMES, FaceModel, load_face_model

HEAD_FILE = Path(__file__).resolve().parent.parent / "models" / "fields_head.npz"

# Frontal orthographic "photo" the head is calibrated and judged under: 20 px per centimetre,
# 512 x 512 pixels, image x = subject's left (a non-mirrored photo), image y down.
PIXELS_PER_METRE = 2000.0
IMAGE_SIZE = 512
IMAGE_CENTRE_Y_M = -0.005  # the face's vertical middle (metres, head axes) sits at the image centre

JAW, EYE_L, EYE_R = JOINT_NAMES.index("jaw"), JOINT_NAMES.index("eye.L"), JOINT_NAMES.index("eye.R")
X, Y = 0, 1

# Each ARKit unit drives exactly one head parameter:
#   ("expression", name)         the shape key `name` (its weight is the unit's weight)
#   ("eyelid", side)             FLAME's eyelid shape, 0 = subject's left, 1 = right
#   ("pose", joint, axis, sign)  a rotation of a joint about one FLAME axis; the angle at weight 1
#                                is stored in the head file (`arkit_pose`), its sign is given here.
# FLAME axes: +x the subject's left, +y up, +z out of the face. A positive rotation about +x turns
# the front of the jaw/eye down; a positive rotation about +y turns it toward the subject's left.
ARKIT_TO_PARAMS: dict[str, tuple] = {
    "eyeBlinkLeft": ("eyelid", 0),
    "eyeBlinkRight": ("eyelid", 1),
    "eyeLookDownLeft": ("pose", EYE_L, X, +1),
    "eyeLookUpLeft": ("pose", EYE_L, X, -1),
    "eyeLookInLeft": ("pose", EYE_L, Y, -1),  # the left eye turns toward the nose: toward -x
    "eyeLookOutLeft": ("pose", EYE_L, Y, +1),
    "eyeLookDownRight": ("pose", EYE_R, X, +1),
    "eyeLookUpRight": ("pose", EYE_R, X, -1),
    "eyeLookInRight": ("pose", EYE_R, Y, +1),  # the right eye turns toward the nose: toward +x
    "eyeLookOutRight": ("pose", EYE_R, Y, -1),
    "jawOpen": ("pose", JAW, X, +1),
    "jawLeft": ("pose", JAW, Y, +1),
    "jawRight": ("pose", JAW, Y, -1),
}
ARKIT_TO_PARAMS.update({name: ("expression", name) for name in ARKIT_NAMES if name not in ARKIT_TO_PARAMS})
EXPRESSION_UNITS = tuple(name for name in ARKIT_NAMES if ARKIT_TO_PARAMS[name][0] == "expression")


@dataclass(frozen=True)
class HeadParams:
    """FLAME parameters of the head: what `forward.forward` takes."""

    expression: np.ndarray  # (n_expr,)
    pose: np.ndarray  # (5, 3) axis-angle [root, neck, jaw, eye.L, eye.R]
    eyelids: np.ndarray  # (2,) [left, right]


@dataclass(frozen=True)
class ArkitMapping:
    """The linear map from 52 ARKit weights (Apple's order) to the head's FLAME parameters."""

    expression: np.ndarray  # (52, n_expr)
    pose: np.ndarray  # (52, 5, 3) axis-angle per unit at weight 1
    eyelids: np.ndarray  # (52, 2)

    def to_params(self, weights: np.ndarray) -> HeadParams:
        weights = np.asarray(weights, dtype=np.float64).reshape(len(ARKIT_NAMES))
        return HeadParams(
            expression=weights @ self.expression,
            pose=np.tensordot(weights, self.pose, axes=1),
            eyelids=weights @ self.eyelids,
        )

    def from_params(self, params: HeadParams) -> np.ndarray:
        """The ARKit weights that `to_params` maps to `params` (exact for weights in [0, 1] where
        opposite units, e.g. eyeLookUp and eyeLookDown, are not both non-zero)."""
        weights = np.zeros(len(ARKIT_NAMES))
        for i, name in enumerate(ARKIT_NAMES):
            target = ARKIT_TO_PARAMS[name]
            if target[0] == "expression":
                weights[i] = params.expression[int(np.argmax(self.expression[i]))]
            elif target[0] == "eyelid":
                weights[i] = params.eyelids[target[1]]
            else:
                _, joint, axis, _ = target
                amplitude = self.pose[i, joint, axis]
                weights[i] = max(0.0, params.pose[joint, axis] / amplitude)
        return weights


def arkit_mapping(model: FaceModel) -> ArkitMapping:
    """Read the ARKit table that the generator stored in a head file."""
    try:
        names = tuple(str(n) for n in model.extras["arkit_names"])
        mapping = ArkitMapping(
            expression=np.asarray(model.extras["arkit_expression"], dtype=np.float64),
            pose=np.asarray(model.extras["arkit_pose"], dtype=np.float64),
            eyelids=np.asarray(model.extras["arkit_eyelids"], dtype=np.float64),
        )
    except KeyError as exc:
        raise ValueError(f"{model.source or model.name} has no ARKit table ({exc} missing)") from None
    if names != ARKIT_NAMES:
        raise ValueError(f"{model.source or model.name} lists its ARKit units in another order")
    return mapping


def load_default_head() -> tuple[FaceModel, ArkitMapping]:
    model = load_face_model(HEAD_FILE)
    return model, arkit_mapping(model)


def project_frontal(vertices: np.ndarray) -> np.ndarray:
    """Image pixels (N, 2) of head-space points (N, 3+) in the fixed frontal orthographic view."""
    points = np.asarray(vertices, dtype=np.float64)
    u = IMAGE_SIZE / 2 + PIXELS_PER_METRE * points[..., 0]
    v = IMAGE_SIZE / 2 - PIXELS_PER_METRE * (points[..., 1] - IMAGE_CENTRE_Y_M)
    return np.stack([u, v], axis=-1)


def landmarks(
    model: FaceModel, mapping: ArkitMapping, weights: np.ndarray | None = None, shape: np.ndarray | None = None
) -> np.ndarray:
    """The 478 MediaPipe landmarks (metres, head axes) of the head posed by ARKit weights."""
    from .forward import forward  # local: forward imports face_model only, but keeps this light

    params = mapping.to_params(np.zeros(len(ARKIT_NAMES)) if weights is None else weights)
    out = forward(model, shape=shape, expression=params.expression, pose=params.pose, eyelids=params.eyelids)
    return out.vertices[:N_LANDMARKS]


@dataclass(frozen=True)
class UnitResponse:
    """How the referee reads one unit driven alone at weight 1, as a change from the neutral head."""

    unit: str
    intended_increase: float
    top_unit: str  # the unit whose score rose most
    top_increase: float


def referee_scores(
    network: object, model: FaceModel, mapping: ArkitMapping, weights: np.ndarray | None = None
) -> dict[str, float]:
    """MediaPipe's blendshape scores of the head in the fixed frontal view."""
    return network.named(project_frontal(landmarks(model, mapping, weights)))  # type: ignore[attr-defined]


def purity_table(network: object, model: FaceModel, mapping: ArkitMapping) -> list[UnitResponse]:
    """Drive each scored unit alone at weight 1 and compare the referee's scores with neutral."""
    from ..perception.blendshapes import MEDIAPIPE_NAMES

    scored = MEDIAPIPE_NAMES[1:]
    neutral = referee_scores(network, model, mapping)
    rows = []
    for unit in scored:
        weights = np.zeros(len(ARKIT_NAMES))
        weights[ARKIT_NAMES.index(unit)] = 1.0
        scores = referee_scores(network, model, mapping, weights)
        change = {name: scores[name] - neutral[name] for name in scored}
        top = max(change, key=lambda name: change[name])
        rows.append(UnitResponse(unit, change[unit], top, change[top]))
    return rows


def mirror_name(unit: str) -> str | None:
    """The other side's unit (eyeBlinkLeft <-> eyeBlinkRight), or None for a midline unit."""
    for side, other in (("Left", "Right"), ("Right", "Left")):
        if unit.endswith(side):
            return unit[: -len(side)] + other
    return None
