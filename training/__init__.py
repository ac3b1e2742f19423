"""FIELDS training: the expression/emotion encoder and the weights the add-on ships.

Implements the FIELDS method (Ling, Shi, Kjellström, arXiv 2511.21245) on top of the frozen
MediaPipe perception stage: direct supervision of the 3D expression parameters from synthetic
faces with exact ground truth, self-supervised 2D landmark consistency, and an auxiliary emotion
branch with an intensity-aware loss. PyTorch lives here only; `inference/` runs the exported ONNX.
Never imports bpy.
"""
