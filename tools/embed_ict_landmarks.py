"""Our own MediaPipe landmark embedding of the ICT head, and its re-detection error.

`solve`: render the neutral ICT head headlessly with Blender's Workbench engine in a few views
(front, turned left and right, from above and below), run our perception on each render, cast each
view's 478 landmarks through the camera onto the mesh, combine the views robustly (median, then the
mean of the hits within 3 mm of it) and snap the result to the surface as triangle + barycentric
coordinates. Writes `inference/models/ict_head_mediapipe_embedding.npz` in the layout
`inference.retarget.correspondence.load_mediapipe_embedding` reads (`lmk_face_idx`, `lmk_b_coords`,
`landmark_indices`). `measure`: render the posed head in the front view, detect its landmarks, and
compare them with the embedding's points projected through the same camera, in pixels of the
landmark network's 256 x 256 crop. A development tool; it imports bpy, which only fields_addon/
does at run time. Run: .venv/bin/python tools/embed_ict_landmarks.py solve|measure
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]
from checkout_blender import enable_checkout, use_throwaway_user_folder  # noqa: E402
from make_ict_head import write_atomically  # noqa: E402

if "bpy" not in sys.modules:  # run as a tool, not imported by the Blender tests: not the user's Blender
    use_throwaway_user_folder("fields-embed-")

import bpy  # noqa: E402
from mathutils import Vector  # noqa: E402
from mathutils.bvhtree import BVHTree  # noqa: E402

from inference.head.default_head import arkit_mapping  # noqa: E402
from inference.head.face_model import FaceModel, load_face_model  # noqa: E402
from inference.head.forward import forward, rodrigues  # noqa: E402
from inference.head.rig import FLAME_TO_BLENDER, flame_pose_to_bone_quaternions  # noqa: E402
from inference.perception.blendshapes import ARKIT_NAMES  # noqa: E402
from inference.perception.pipeline import Perception  # noqa: E402

ICT_HEAD = ROOT / "inference" / "models" / "ict_head.npz"
EMBEDDING = ROOT / "inference" / "models" / "ict_head_mediapipe_embedding.npz"
SIZE = 512
LENS_MM, SENSOR_MM, DISTANCE = 85.0, 36.0, 0.75
CROP = 256  # the landmark network's input: errors are reported in its pixels
COLOURS = {"skin": (0.80, 0.62, 0.52), "eyes": (0.93, 0.93, 0.90), "iris": (0.25, 0.16, 0.10),
           "teeth": (0.92, 0.90, 0.82), "mouth": (0.62, 0.30, 0.30), "lashes": (0.08, 0.06, 0.05)}
IRIS_DEG, PUPIL_DEG = 29.0, 11.0  # half-angles seen from the eye's centre (11.7 mm iris, 12 mm radius)
SOLVE_VIEWS = ((0.0, 0.0), (-15.0, 0.0), (15.0, 0.0), (0.0, 10.0), (0.0, -10.0))  # (yaw, pitch) degrees
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
HIDDEN_PARTS = ("eye_film",)  # see-through layers over the eyes: Workbench would paint them opaque
NOT_HIT = ("eye_film", "lashes")  # rays pass through these to the lid or eye behind
LANDMARK_PARTS = ("skin", "eyes", "iris")


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
    """RGBA (V, 4) by part, with an iris and pupil painted on the eyes' outer shell: ICT draws them
    with a texture it does not ship, and the landmark network needs to see them."""
    names = [str(n) for n in model.extras["part_names"]]
    rgba = np.ones((model.n_verts, 4), np.float32)
    rgba[:, :3] = 0.5
    for index, name in enumerate(names):
        rgba[model.faces[model.extras["face_parts"] == index].ravel(), :3] = COLOURS.get(name, (0.5, 0.5, 0.5))
    shell = np.unique(model.faces[model.extras["face_parts"] == names.index("eyes")])
    for centre in model.rest_joints()[3:]:
        side = shell[np.sign(model.v_template[shell, 0]) == np.sign(centre[0])]
        offset = model.v_template[side] - centre
        angle = np.degrees(np.arccos(offset[:, 2] / np.linalg.norm(offset, axis=1)))
        rgba[side[angle < IRIS_DEG], :3] = COLOURS["iris"]
        rgba[side[angle < PUPIL_DEG], :3] = (0.02, 0.02, 0.02)
    return rgba


def face_centre(model: FaceModel) -> np.ndarray:
    """Blender-space middle of the face: between the eyes and the chin."""
    eyes = model.rest_joints()[3:].mean(axis=0)
    return FLAME_TO_BLENDER @ (eyes + np.array([0.0, -0.035, 0.0]))


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


def solve(head: bpy.types.Object, camera: bpy.types.Object, model: FaceModel, folder: Path) -> dict[str, np.ndarray]:
    verts = pose_head(head, model, np.zeros(len(ARKIT_NAMES)))
    names = [str(n) for n in model.extras["part_names"]]
    parts = model.extras["face_parts"]
    hittable = np.flatnonzero(~np.isin(parts, [names.index(p) for p in NOT_HIT]))
    tree = BVHTree.FromPolygons(verts.tolist(), model.faces[hittable].tolist())
    # A ray through the closed lips' seam meets the teeth: the landmark is on the lip nearest that hit.
    outer = np.flatnonzero(np.isin(parts, [names.index(p) for p in LANDMARK_PARTS]))
    surface = BVHTree.FromPolygons(verts.tolist(), model.faces[outer].tolist())
    perception = Perception()
    hits = np.full((len(SOLVE_VIEWS), 478, 3), np.nan)
    centre = face_centre(model)
    for v, (yaw, pitch) in enumerate(SOLVE_VIEWS):
        aim(camera, centre, yaw, pitch)
        found, _ = detect(perception, folder, f"solve_{v}")
        origin, directions = rays(camera, found)
        for i, direction in enumerate(directions):
            location, _normal, _index, _distance = tree.ray_cast(Vector(origin), Vector(direction))
            if location is not None:
                hits[v, i] = location
    median = np.nanmedian(hits, axis=0)
    close = np.linalg.norm(hits - median, axis=2) < 0.003
    combined = np.array([hits[close[:, i], i].mean(0) if close[:, i].any() else median[i] for i in range(478)])
    if not np.all(np.isfinite(combined)):
        raise RuntimeError(f"{int(np.isnan(combined).any(1).sum())} landmarks hit the head in no view")
    face_idx, coords = np.zeros(478, np.int64), np.zeros((478, 3))
    for i, point in enumerate(combined):
        location, _normal, index, _distance = surface.find_nearest(Vector(point))
        face_idx[i] = outer[index]
        coords[i] = barycentric(verts[model.faces[face_idx[i]]], np.array(location))
    spread = np.nanmedian(np.linalg.norm(hits - combined, axis=2), axis=0)
    print(f"solved from {len(SOLVE_VIEWS)} views: median spread of the views' hits {np.median(spread) * 1000:.2f} mm "
          f"(90th percentile {np.percentile(spread, 90) * 1000:.2f} mm)")
    return {"lmk_face_idx": face_idx, "lmk_b_coords": coords, "landmark_indices": np.arange(478)}


def barycentric(triangle: np.ndarray, point: np.ndarray) -> np.ndarray:
    a, b, c = triangle
    matrix = np.stack([b - a, c - a], axis=1)
    (u, w), *_ = np.linalg.lstsq(matrix, point - a, rcond=None)
    coords = np.clip(np.array([1 - u - w, u, w]), 0.0, 1.0)
    return coords / coords.sum()


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
    args = parser.parse_args(argv)
    enable_checkout(bpy)
    head, camera, model = setup_scene()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if args.action == "solve":
            write_atomically(solve(head, camera, model, folder), EMBEDDING)
            print(f"wrote {EMBEDDING}")
        with np.load(EMBEDDING) as stored:
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
