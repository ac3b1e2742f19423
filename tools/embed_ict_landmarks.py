"""Our own MediaPipe landmark embedding of the ICT head, and its re-detection error.

`solve`: the add-on's own automatic embedding (`fields_addon/landmark_embedding.py` over
`inference/retarget/embedding.py`, the method a user's FLAME file gets on first use): render the
neutral ICT head headlessly with Blender's Workbench engine in a few views (front, turned left and
right, from above and below), run our perception on each render, cast each view's 478 landmarks
through the camera onto the mesh, combine the views robustly (median, then the mean of the hits
within 3 mm of it) and snap the result to the surface as triangle + barycentric coordinates.
Writes `inference/models/ict_head_mediapipe_embedding.npz` in the layout
`inference.retarget.correspondence.load_mediapipe_embedding` reads (`lmk_face_idx`, `lmk_b_coords`,
`landmark_indices`). `measure`: render the posed head in the front view, detect its landmarks, and
compare them with the embedding's points projected through the same camera, in pixels of the
landmark network's 256 x 256 crop. A development tool; it imports bpy, which only fields_addon/
does at run time. Run: .venv/bin/python tools/embed_ict_landmarks.py solve|measure [--output FILE]
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]
from checkout_blender import MODULE, enable_checkout, use_throwaway_user_folder  # noqa: E402
from make_ict_head import write_atomically  # noqa: E402

if "bpy" not in sys.modules:  # run as a tool, not imported by the Blender tests: not the user's Blender
    use_throwaway_user_folder("fields-embed-")

import bpy  # noqa: E402
from mathutils import Vector  # noqa: E402

from inference.head.default_head import arkit_mapping  # noqa: E402
from inference.head.face_model import FaceModel, load_face_model  # noqa: E402
from inference.head.forward import forward, rodrigues  # noqa: E402
from inference.head.rig import FLAME_TO_BLENDER, flame_pose_to_bone_quaternions  # noqa: E402
from inference.perception.blendshapes import ARKIT_NAMES  # noqa: E402
from inference.perception.pipeline import Perception  # noqa: E402
from inference.retarget.embedding import (  # noqa: E402
    DISTANCE,
    HIDDEN_PARTS,
    LENS_MM,
    SENSOR_MM,
    SIZE,
    VIEWS,
    appearance,
    face_centre,
)

ICT_HEAD = ROOT / "inference" / "models" / "ict_head.npz"
EMBEDDING = ROOT / "inference" / "models" / "ict_head_mediapipe_embedding.npz"
CROP = 256  # the landmark network's input: errors are reported in its pixels
# A spread of single and combined units, at strengths an actor reaches.
EXPRESSIONS = {
    "jawOpen": {"jawOpen": 0.5},
    "smile": {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8},
    "brows up": {"browInnerUp": 0.8, "browOuterUpLeft": 0.8, "browOuterUpRight": 0.8},
    "blink": {"eyeBlinkLeft": 0.7, "eyeBlinkRight": 0.7},
    "pucker": {"mouthPucker": 0.8},
    "frown": {"mouthFrownLeft": 0.8, "mouthFrownRight": 0.8, "browDownLeft": 0.6, "browDownRight": 0.6},
    "look left": {"eyeLookOutLeft": 0.5, "eyeLookInRight": 0.5},
}

def setup_scene() -> tuple[bpy.types.Object, bpy.types.Object, FaceModel]:
    """Add the ICT head (the add-on must be enabled), colour its parts, and add a camera."""
    assert bpy.ops.fields.add_head(filepath=str(ICT_HEAD)) == {"FINISHED"}
    head = bpy.context.view_layer.objects.active
    model = load_face_model(ICT_HEAD)
    colours = head.data.color_attributes.new("render", "FLOAT_COLOR", "POINT")
    colours.data.foreach_set("color", vertex_colours(model).ravel())
    head.data.color_attributes.active_color = colours
    for part in HIDDEN_PARTS:
        mask = head.modifiers.new(f"hide {part}", "MASK")
        mask.vertex_group, mask.invert_vertex_group = part, True
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = SIZE
    shading = scene.display.shading
    shading.light, shading.color_type = "STUDIO", "VERTEX"
    shading.show_specular_highlight = False
    scene.world = bpy.data.worlds.new("embed") if scene.world is None else scene.world
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.lens, camera.data.sensor_width = LENS_MM, SENSOR_MM
    scene.collection.objects.link(camera)
    scene.camera = camera
    return head, camera, model


def vertex_colours(model: FaceModel) -> np.ndarray:
    """RGBA (V, 4) by part, irises painted on the eyes: the add-on's own colouring for the embedding."""
    return appearance(model).colours


def aim(camera: bpy.types.Object, target: np.ndarray, yaw: float, pitch: float) -> None:
    """Camera on a sphere around `target`; yaw turns toward the subject's left, pitch looks from above."""
    y, p = math.radians(yaw), math.radians(pitch)
    offset = DISTANCE * np.array([math.sin(y) * math.cos(p), -math.cos(y) * math.cos(p), math.sin(p)])
    camera.location = Vector(target + offset)
    camera.rotation_euler = (math.pi / 2 - p, 0.0, y)
    bpy.context.view_layer.update()


def project(camera: bpy.types.Object, points: np.ndarray) -> np.ndarray:
    """Image pixels (N, 2) of Blender-space points (x right, y down; 0 at the image's edge)."""
    world_to_camera = np.linalg.inv(np.array(camera.matrix_world))
    local = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    focal = LENS_MM / SENSOR_MM * SIZE
    return np.stack([SIZE / 2 + focal * local[:, 0] / -local[:, 2], SIZE / 2 - focal * local[:, 1] / -local[:, 2]], 1)


def rays(camera: bpy.types.Object, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    focal = LENS_MM / SENSOR_MM * SIZE
    local = np.stack([(pixels[:, 0] - SIZE / 2) / focal, -(pixels[:, 1] - SIZE / 2) / focal, -np.ones(len(pixels))], 1)
    matrix = np.array(camera.matrix_world)
    directions = local @ matrix[:3, :3].T
    return matrix[:3, 3], directions / np.linalg.norm(directions, axis=1, keepdims=True)


def detect(perception: Perception, folder: Path, name: str) -> tuple[np.ndarray, float]:
    """Render the scene and find its face: landmarks (478, 2) in image pixels, and the crop's scale
    (network pixels per image pixel)."""
    path = folder / f"{name}.png"
    bpy.context.scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    result = perception.run(str(path))
    if not result.faces:
        raise RuntimeError(f"no face found on the render {path}")
    face = result.faces[0]
    return face.landmarks_px[:, :2], CROP / face.roi.width


def pose_head(head: bpy.types.Object, model: FaceModel, weights: np.ndarray) -> np.ndarray:
    """Set the rig to ARKit weights; return the posed vertices (Blender space) from the forward model."""
    params = arkit_mapping(model).to_params(weights)
    blocks = head.data.shape_keys.key_blocks
    for names, values in ((model.expression_names, params.expression), (model.eyelid_names, params.eyelids)):
        for name, value in zip(names, values, strict=True):
            blocks[name].value = float(value)
    for joint, quaternion in flame_pose_to_bone_quaternions(rodrigues(params.pose)).items():
        head.parent.pose.bones[joint].rotation_quaternion = quaternion
    bpy.context.view_layer.update()
    out = forward(model, expression=params.expression, pose=params.pose, eyelids=params.eyelids)
    return out.vertices @ FLAME_TO_BLENDER.T


def solve(model: FaceModel) -> dict[str, np.ndarray]:
    """The add-on's automatic embedding of the ICT head, in a temporary scene of its own."""
    landmark_embedding = importlib.import_module(MODULE + ".fields_addon.landmark_embedding")
    started = time.perf_counter()
    arrays: dict[str, np.ndarray] = landmark_embedding.compute(model, Perception(), ICT_HEAD)
    print(f"solved from {len(VIEWS)} views in {time.perf_counter() - started:.1f} s")
    return arrays


def embedded_points(verts: np.ndarray, model: FaceModel, embedding: dict[str, np.ndarray]) -> np.ndarray:
    corners = verts[model.faces[embedding["lmk_face_idx"]]]
    return np.einsum("nk,nki->ni", embedding["lmk_b_coords"], corners)


def redetection_error(head: bpy.types.Object, camera: bpy.types.Object, model: FaceModel,
                      embedding: dict[str, np.ndarray], perception: Perception, folder: Path,
                      units: dict[str, float], yaw: float = 0.0) -> np.ndarray:
    """Per-landmark distance (478,) between detection and the embedding's projection, in crop pixels."""
    weights = np.zeros(len(ARKIT_NAMES))
    for unit, value in units.items():
        weights[ARKIT_NAMES.index(unit)] = value
    verts = pose_head(head, model, weights)
    aim(camera, face_centre(model), yaw, 0.0)
    found, scale = detect(perception, folder, "measure_" + "_".join(units) + f"_{yaw:+.0f}")
    predicted = project(camera, embedded_points(verts, model, embedding))
    return np.linalg.norm(found - predicted[embedding["landmark_indices"]], axis=1) * scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("solve", "measure"))
    parser.add_argument("--keep", type=Path, help="keep the renders in this folder")
    parser.add_argument("--output", type=Path, default=EMBEDDING, help="the embedding written and measured")
    args = parser.parse_args(argv)
    enable_checkout(bpy)
    if args.action == "solve":
        write_atomically(solve(load_face_model(ICT_HEAD)), args.output)
        print(f"wrote {args.output}")
    head, camera, model = setup_scene()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        with np.load(args.output) as stored:
            embedding = {key: stored[key] for key in stored.files}
        perception = Perception()
        for label, units, yaw in [("neutral", {}, 0.0), ("neutral, turned 25 deg (no solve view)", {}, 25.0),
                                  *((label, units, 0.0) for label, units in EXPRESSIONS.items())]:
            error = redetection_error(head, camera, model, embedding, perception, folder, units, yaw)
            print(f"{label:10s} re-detection error at {CROP} px: mean {error.mean():.2f}, median "
                  f"{np.median(error):.2f}, 95th percentile {np.percentile(error, 95):.2f}, max {error.max():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
