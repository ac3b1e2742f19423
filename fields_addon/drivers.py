"""Driver helpers shared by the head builder and the reconstruction layer.

Every driver FIELDS adds must pass its expression's value through unchanged, so the F-curve that
carries it is stripped of the keys and modifiers Blender adds by default. Must not hold state.
"""

from __future__ import annotations

from typing import Any, cast

import bpy

Target = tuple[str, Any, str]  # (variable name, ID it reads, data path)


def add_driver(owner: Any, path: str, index: int = -1, kind: str = "SCRIPTED") -> bpy.types.Driver:
    fcurve = cast(bpy.types.FCurve, owner.driver_add(path, index))
    # The driver's value must pass through unchanged. Blender 4.x adds an identity Generator
    # modifier; 5.0 adds Bezier keys (0,0)-(1,1) whose curve solver flattens values below ~1e-3
    # (measured: joint offsets of 1e-4 m came out 0). Neither is wanted.
    fcurve.keyframe_points.clear()
    while fcurve.modifiers:
        fcurve.modifiers.remove(fcurve.modifiers[0])
    driver = cast(bpy.types.Driver, fcurve.driver)
    driver.type = kind  # type: ignore[assignment]  # SCRIPTED or SUM
    return driver


def add_variables(driver: bpy.types.Driver, targets: list[Target]) -> None:
    for name, ident, path in targets:
        variable = driver.variables.new()
        variable.name = name
        variable.type = "SINGLE_PROP"
        target = variable.targets[0]
        target.id_type = ident.id_type
        target.id = ident
        target.data_path = path
