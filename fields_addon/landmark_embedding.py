"""The automatic MediaPipe landmark embedding of a FLAME file: rendering and ray casting in Blender.

`compute` renders the model's neutral template with Workbench in `inference.retarget.embedding`'s
views, from a temporary scene holding only a temporary mesh, camera and world (the user's scenes,
their render settings and the Render Result are left as they were; every temporary block is
removed on every exit path), runs our perception on the renders, casts each landmark's ray onto the
mesh with a BVH tree, and hands the hits to `embedding.solve`. `automatic` wraps it with the cache
in the extension's user folder, keyed by the FLAME file's sha256: a later use loads the cache, and
an unwritable folder only costs the caching (a warning). Takes a model and paths, never a context.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix, Vector
from mathutils.bvhtree import BVHTree

from ..inference.errors import LandmarkEmbeddingError
from ..inference.head.face_model import FaceModel
from ..inference.head.rig import FLAME_TO_BLENDER
from ..inference.perception.landmarks import N_LANDMARKS
from ..inference.retarget import embedding

ADDON_ID = __package__.rpartition(".")[0]
CACHE_FOLDER = "flame_embeddings"
NAME = "FIELDS landmark embedding"


def cache_folder() -> Path:
    return Path(bpy.utils.extension_path_user(ADDON_ID, path=CACHE_FOLDER, create=False))


def automatic(model: FaceModel, sha256: str, perception: Any, warn: Any) -> Any:
    """The embedding of `model` (a `SurfacePoints`), from the cache or computed and cached;
    `warn(message)` is told when the cache cannot be written. Raises EmbeddingError naming the file."""
    from ..inference.retarget.correspondence import load_mediapipe_embedding

    cached = embedding.cache_file(cache_folder(), sha256)
    if cached.is_file():
        try:
            return load_mediapipe_embedding(cached, model)
        except LandmarkEmbeddingError:
            pass  # a damaged cache is computed again and replaced
    arrays = compute(model, perception, model.source)
    try:
        embedding.write(cached, arrays)
    except OSError as error:
        warn(f"The landmark embedding of '{model.source}' was computed but cannot be cached in "
             f"'{cached.parent}' ({error.strerror or error}); it will be computed again next session.")
    from ..inference.retarget.correspondence import SurfacePoints

    return SurfacePoints(model.faces[arrays["lmk_face_idx"]].astype(np.int64), arrays["lmk_b_coords"],
                         arrays["landmark_indices"])


def compute(model: FaceModel, perception: Any, path: str | os.PathLike[str],
            views: tuple[tuple[float, float], ...] = embedding.VIEWS) -> dict[str, np.ndarray]:
    """Render, detect, ray-cast and solve: the embedding's arrays (all 478 landmarks)."""
    embedding.check_shape(model, path)
    look = embedding.appearance(model)
    vertices = model.v_template @ FLAME_TO_BLENDER.T
    hit_faces = model.faces[look.hit]
    tree: Any = BVHTree.FromPolygons(vertices.tolist(), hit_faces.tolist())  # typed Optional; never None here
    target = embedding.face_centre(model)
    hits = np.full((len(views), N_LANDMARKS, 3), np.nan)
    with tempfile.TemporaryDirectory(prefix="fields-embed-") as folder, _scene(vertices, model, look) as scene:
        for v, (yaw, pitch) in enumerate(views):
            matrix = embedding.camera_matrix(target, yaw, pitch)
            scene.camera.matrix_world = Matrix(matrix.tolist())
            scene.render.filepath = os.path.join(folder, f"view_{v}.png")
            bpy.ops.render.render(write_still=True, scene=scene.name)
            found = perception.run(scene.render.filepath)
            if not found.faces:
                continue
            landmarks = found.faces[0].landmarks_px
            origin, directions = embedding.rays(matrix, landmarks[:, :2])
            distances = np.full(N_LANDMARKS, np.nan)
            for i, direction in enumerate(directions):
                location, _normal, _index, distance = tree.ray_cast(Vector(origin), Vector(direction))
                if location is not None:
                    distances[i] = distance
            hits[v] = embedding.along_rays(origin, directions, distances, landmarks[:, 2])
    return embedding.solve(model, hits, look.surface, path)


@contextmanager
def _scene(vertices: np.ndarray, model: FaceModel, look: embedding.Appearance) -> Iterator[Any]:
    """A scene of its own: the head painted per vertex, a camera, studio light, nothing else."""
    images = set(bpy.data.images)
    created: list[tuple[Any, Any]] = []  # (collection, block), removed in reverse order
    try:
        scene = bpy.data.scenes.new(NAME)
        created.append((bpy.data.scenes, scene))
        mesh = bpy.data.meshes.new(NAME)
        created.append((bpy.data.meshes, mesh))
        _fill(mesh, vertices, model.faces[look.shown], look.colours)
        head = bpy.data.objects.new(NAME, mesh)
        created.append((bpy.data.objects, head))
        scene.collection.objects.link(head)
        camera_data = bpy.data.cameras.new(NAME)
        created.append((bpy.data.cameras, camera_data))
        camera_data.lens, camera_data.sensor_width = embedding.LENS_MM, embedding.SENSOR_MM
        camera = bpy.data.objects.new(NAME + " camera", camera_data)
        created.append((bpy.data.objects, camera))
        scene.collection.objects.link(camera)
        scene.camera = camera
        world = bpy.data.worlds.new(NAME)
        created.append((bpy.data.worlds, world))
        scene.world = world
        scene.render.engine = "BLENDER_WORKBENCH"  # type: ignore[assignment]  # the stubs list EEVEE only
        scene.render.resolution_x = scene.render.resolution_y = embedding.SIZE
        scene.render.resolution_percentage = 100
        scene.render.image_settings.file_format = "PNG"
        shading = scene.display.shading
        shading.light, shading.color_type = "STUDIO", "VERTEX"
        shading.show_specular_highlight = False
        yield scene
    finally:
        for collection, block in reversed(created):
            collection.remove(block)
        for image in set(bpy.data.images) - images:  # the Render Result, when the user had none
            bpy.data.images.remove(image)


def _fill(mesh: Any, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray) -> None:
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.astype(np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("loop_total", np.full(len(faces), 3, np.int32))
    mesh.update()
    attribute = mesh.color_attributes.new("render", "FLOAT_COLOR", "POINT")
    attribute.data.foreach_set("color", colours.astype(np.float32).ravel())
    mesh.color_attributes.active_color = attribute
