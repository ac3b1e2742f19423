"""MediaPipe's canonical face geometry, read from `geometry_pipeline_metadata_landmarks.binarypb`.

The file is a `GeometryPipelineMetadata` protobuf (mediapipe/modules/face_geometry/protos): the
canonical face mesh (468 vertices with UVs, in centimetres, and 898 triangles) and the weighted
landmark basis of the Procrustes solve that yields the facial transformation matrix. Only four
message types are involved, so a minimal wire-format reader here avoids a protobuf dependency (and
its generated code) at run time. Must not import bpy.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parent.parent / "models"
GEOMETRY_FILE = MODELS / "geometry_pipeline_metadata_landmarks.binarypb"


@dataclass(frozen=True)
class CanonicalFace:
    vertices: np.ndarray  # (468, 3) centimetres, MediaPipe's metric space (+y up, +z toward the viewer)
    uvs: np.ndarray  # (468, 2)
    triangles: np.ndarray  # (898, 3) int32
    procrustes_ids: np.ndarray  # (K,) landmark indices
    procrustes_weights: np.ndarray  # (K,)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _packed_varints(data: bytes) -> list[int]:
    values, i = [], 0
    while i < len(data):
        value, i = _varint(data, i)
        values.append(value)
    return values


@lru_cache(maxsize=1)
def load_canonical_face(path: Path = GEOMETRY_FILE) -> CanonicalFace:
    vertex_buffer: list[float] = []
    index_buffer: list[int] = []
    ids, weights = [], []
    for number, _, value in _fields(path.read_bytes()):
        if number == 1 and isinstance(value, bytes):  # canonical_mesh: Mesh3d
            for field, _wire, item in _fields(value):
                if field == 3:  # vertex_buffer: float, packed or not
                    assert isinstance(item, bytes)
                    vertex_buffer += struct.unpack(f"<{len(item) // 4}f", item)
                elif field == 4:  # index_buffer: uint32, packed or not
                    index_buffer += _packed_varints(item) if isinstance(item, bytes) else [item]
        elif number == 2 and isinstance(value, bytes):  # procrustes_landmark_basis: WeightedLandmarkRef
            landmark, weight = 0, 0.0
            for field, _, item in _fields(value):
                if field == 1 and isinstance(item, int):
                    landmark = item
                elif field == 2 and isinstance(item, bytes):
                    weight = struct.unpack("<f", item)[0]
            ids.append(landmark)
            weights.append(weight)
    buffer = np.asarray(vertex_buffer, dtype=np.float64).reshape(-1, 5)  # x, y, z, u, v
    return CanonicalFace(
        vertices=buffer[:, :3],
        uvs=buffer[:, 3:],
        triangles=np.asarray(index_buffer, dtype=np.int32).reshape(-1, 3),
        procrustes_ids=np.asarray(ids, dtype=np.int64),
        procrustes_weights=np.asarray(weights, dtype=np.float64),
    )
