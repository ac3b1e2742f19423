"""Where the shipped ICT head and its MediaPipe landmark embedding live: the default head.

`tools/make_ict_head.py` writes the head, `tools/embed_ict_landmarks.py` its embedding (see
docs/MODELS.md). Add Head builds this head when no FLAME file is set, and "Match face shape" reads
its landmarks through this embedding. Paths only; must not import bpy.
"""

from __future__ import annotations

from pathlib import Path

MODELS = Path(__file__).resolve().parent.parent / "models"
ICT_HEAD_FILE = MODELS / "ict_head.npz"
ICT_EMBEDDING_FILE = MODELS / "ict_head_mediapipe_embedding.npz"
# Shipped heads that carry their own MediaPipe embedding, by file name.
SHIPPED_EMBEDDINGS = {ICT_HEAD_FILE.name: ICT_EMBEDDING_FILE}
