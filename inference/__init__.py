"""FIELDS inference: face-model files, the numpy FLAME forward model, and (later) perception,
the expression encoder and retargeting.

Pure Python + numpy (+ OpenCV and ONNX Runtime, imported lazily where needed). It never imports
`bpy`: the Blender add-on calls into it, and so do the command line and the training package.
Imports inside this package are relative, because Blender loads it as part of the extension
(`bl_ext.<repo>.fields.inference`) while a checkout runs it as the top-level `inference`.
"""
