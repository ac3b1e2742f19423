"""ONNX Runtime sessions: CUDA when it really loads, the CPU otherwise, and the truth about which.

`onnxruntime.get_available_providers()` lists CUDA whenever the GPU build is installed, even on a
machine whose driver or cuDNN is missing, so the provider in use is read back from the session
(`session.get_providers()`). `FIELDS_PROVIDERS=cpu` forces the CPU. onnxruntime is imported here,
lazily, never at add-on enable time. Must not import bpy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def create_session(model: str | os.PathLike[str] | bytes, *, intra_op_threads: int = 0,
                   inter_op_threads: int = 0, allow_gpu: bool = True) -> Any:
    """An `onnxruntime.InferenceSession` on CUDA if it loads, else on the CPU.

    Thread counts of 0 let ONNX Runtime choose (one per physical core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.log_severity_level = 3  # errors only: a missing CUDA is expected, not noise
    wanted = [CPU]
    if allow_gpu and os.environ.get("FIELDS_PROVIDERS", "").lower() != "cpu" and CUDA in ort.get_available_providers():
        wanted.insert(0, CUDA)
    source = model if isinstance(model, bytes) else str(Path(model))
    return ort.InferenceSession(source, sess_options=options, providers=wanted)


def providers_in_use(session: Any) -> list[str]:
    """Short names of the providers the session actually runs on, e.g. ['CUDA', 'CPU']."""
    return [name.removesuffix("ExecutionProvider") for name in session.get_providers()]
