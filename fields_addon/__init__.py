"""The Blender side of FIELDS: preferences, operators, panels. The only package that imports bpy.

Modules register in order and unregister in reverse. Heavy imports (onnxruntime, cv2) happen
inside operators, never at enable time.
"""

from __future__ import annotations

from . import artist, head, interchange, live, panel, preferences, reconstruct, sequence, settings

_modules = (preferences, settings, head, reconstruct, sequence, interchange, live, panel, artist)


def register() -> None:
    for module in _modules:
        module.register()


def unregister() -> None:
    for module in reversed(_modules):
        module.unregister()
