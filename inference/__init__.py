"""FIELDS inference: a photo or video in, a plan for the artist's head out, one package per stage.

`perception/` (image -> `Face`s) -> `expression/` (`Face` -> `Expression`) -> `retarget/`
(`Expression` + target -> `Plan`) -> `sequence/` (the same per frame of a video or folder, as
keyframe arrays); `head/` holds the face models they share, `errors.py` and `files.py` the typed
errors and the one atomic writer, `models/` the shipped networks and head.

Pure Python + numpy (+ OpenCV and ONNX Runtime, imported lazily where needed). It never imports
`bpy`: the Blender add-on calls into it, and so do the command line and the training package.
Imports inside this package are relative, because Blender loads it as part of the extension
(`bl_ext.<repo>.fields.inference`) while a checkout runs it as the top-level `inference`.
"""
