"""Export a trained encoder: ONNX (opset 17, dynamic batch, named outputs) plus its metadata JSON,
checked against PyTorch with ONNX Runtime before anything is renamed into place.

The metadata is the model's contract with `inference/` (nanoGPT keeps `model_args` beside the
weights; we keep inputs, outputs with sizes, labels, the face model's name and sha256, the config
and the metrics), so inference reads sizes from it instead of hard-coding them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.errors import FieldsError
from inference.expression.emotions import EMOTIONS
from inference.expression.features import FEATURE_VERSION
from inference.files import write_atomic, write_with

from .model import OUTPUT_NAMES, Encoder

OPSET = 17
INPUT_NAME = "features"
TOLERANCE = 1e-4


class ExportError(FieldsError):
    """The exported graph does not compute what the PyTorch model computes."""


def export(encoder: Encoder, onnx_path: Path, metadata: dict[str, Any], check_inputs: torch.Tensor) -> float:
    """Write `onnx_path` and `onnx_path.with_suffix('.json')`; return the largest |ORT - torch|."""
    import onnxruntime as ort

    encoder = encoder.eval().cpu()
    sample = check_inputs[:2].float().cpu()
    worst = 0.0

    def write_onnx(tmp: Path) -> None:
        nonlocal worst
        # The TorchScript exporter: deprecated in favour of torch.export's, which needs onnxscript
        # and gives nothing here for an MLP; it still ships with torch 2.13.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # The input's width is fixed in the graph (the appearance term is in it): not a warning.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                encoder, (sample,), str(tmp), dynamo=False, opset_version=OPSET, input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)},
            )
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        batch = check_inputs.float().cpu()
        got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch.numpy()})
        with torch.no_grad():
            expected = encoder(batch)
        worst = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True))
        if worst > TOLERANCE:
            raise ExportError(f"ONNX Runtime differs from PyTorch by {worst:.2e} (> {TOLERANCE:g})")

    write_with(onnx_path, write_onnx)
    with torch.no_grad():
        sizes = {name: list(t.shape[1:]) for name, t in zip(OUTPUT_NAMES, encoder(sample), strict=True)}
    import hashlib

    document = {
        "format": "fields-encoder/1",
        "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "input": {"name": INPUT_NAME, "size": int(sample.shape[1])},
        "feature_version": FEATURE_VERSION,
        "outputs": [{"name": name, "shape": sizes[name]} for name in OUTPUT_NAMES],
        "emotions": list(EMOTIONS),
        "opset": OPSET,
        "onnx_vs_torch_max_abs": worst,
        **metadata,
    }
    write_metadata(onnx_path.with_suffix(".json"), document)
    return worst


def write_metadata(path: Path, document: dict[str, Any]) -> None:
    """The metadata JSON as `inference.expression.encoder` reads it (each fact stated once)."""
    write_atomic(path, (json.dumps(document, indent=2) + "\n").encode())


SHIPPED = Path(__file__).resolve().parent.parent / "inference" / "models"


def ship(out: Path, target: Path = SHIPPED) -> None:
    """Copy a run's encoder.onnx and encoder.json into the add-on's models folder, each atomically."""
    for name in ("encoder.onnx", "encoder.json"):
        write_atomic(target / name, (out / name).read_bytes())
