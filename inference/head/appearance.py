"""How a head looks before an artist shades it: one colour per part, and irises on the eyeballs.

ICT's eyes ship no iris geometry (the iris is a texture it does not include) and its lash strips
and tear-film layers are meant for alpha-textured shaders; drawn as plain opaque colours they read
as black goggles over blank white eyes. One table serves the viewport colours Add Head gives its
part materials, the demo and docs renders, and the colours the automatic landmark embedding paints
so the landmark network sees a face. bpy-free.
"""

from __future__ import annotations

import numpy as np

from .face_model import FaceModel

# RGBA; alpha 0 hides a see-through layer in Blender's solid viewport and Workbench renders.
PART_COLOURS = {"skin": (0.80, 0.62, 0.52, 1.0), "eyes": (0.93, 0.93, 0.90, 1.0), "iris": (0.25, 0.16, 0.10, 1.0),
                "teeth": (0.92, 0.90, 0.82, 1.0), "mouth": (0.62, 0.30, 0.30, 1.0),
                "lashes": (0.08, 0.06, 0.05, 0.0), "eye_film": (1.0, 1.0, 1.0, 0.0)}
PUPIL = (0.02, 0.02, 0.02)
IRIS_DEG, PUPIL_DEG = 29.0, 11.0  # half-angles seen from the eye's centre (11.7 mm iris, 12 mm radius)


def eye_cone(model: FaceModel, shell: np.ndarray, degrees: float) -> np.ndarray:
    """The vertices of `shell` (eyeball vertex ids) within `degrees` of their eye's forward axis,
    seen from the eye joint: the iris (IRIS_DEG) or the pupil (PUPIL_DEG) of an eye at rest."""
    inside = []
    for centre in model.rest_joints()[3:]:
        side = shell[np.sign(model.v_template[shell, 0]) == np.sign(centre[0])]
        offset = model.v_template[side] - centre
        cosine = offset[:, 2] / np.maximum(np.linalg.norm(offset, axis=1), 1e-12)
        inside.append(side[np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))) < degrees])
    return np.concatenate(inside)
