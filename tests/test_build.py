"""The extension's manifest and build variants (issue 2), checked with Blender's own tool."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_extension  # noqa: E402

MANIFEST = tomllib.loads((ROOT / "blender_manifest.toml").read_text())


def validate(path: Path) -> subprocess.CompletedProcess:
    script = build_extension.blender_ext_script()
    return subprocess.run([sys.executable, str(script), "validate", str(path)], capture_output=True, text=True)


def test_manifest_passes_blenders_validation() -> None:
    result = validate(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_catches_a_bad_manifest(tmp_path: Path) -> None:
    text = (ROOT / "blender_manifest.toml").read_text().replace(MANIFEST["tagline"], MANIFEST["tagline"] + ".")
    (tmp_path / "blender_manifest.toml").write_text(text)
    shutil.copy(ROOT / "__init__.py", tmp_path)
    result = validate(tmp_path)
    assert result.returncode != 0 and "tagline" in result.stdout + result.stderr


def test_manifest_rules() -> None:
    assert MANIFEST["schema_version"] == "1.0.0" and MANIFEST["id"] == "fields"
    assert len(MANIFEST["tagline"]) <= 64 and MANIFEST["tagline"][-1].isalnum()
    assert MANIFEST["blender_version_min"] == "4.2.0"
    assert MANIFEST["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(MANIFEST["permissions"]) == {"files", "camera", "network"}  # camera, network: live capture
    excluded = MANIFEST["build"]["paths_exclude_pattern"]
    for folder in ("/training/", "/tests/", "/docs/", "/tools/", "/inference/batch/"):
        assert folder in excluded


def test_variants_bundle_the_right_onnxruntime() -> None:
    platforms, wheels = build_extension.variant_wheels(MANIFEST, "cpu")
    assert {build_extension.wheel_platform(w) for w in wheels} == set(platforms)
    assert {w.split("-")[0] for w in wheels} == {"onnxruntime", "opencv_python_headless"}
    gpu_platforms, gpu_wheels = build_extension.variant_wheels(MANIFEST, "gpu")
    assert gpu_platforms == ["linux-x64", "windows-x64"]
    assert sorted(gpu_wheels) == [
        "onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        "onnxruntime_gpu-1.31.1-cp311-cp311-win_amd64.whl",
        "opencv_python_headless-4.11.0.86-cp37-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "opencv_python_headless-4.11.0.86-cp37-abi3-win_amd64.whl",
    ]


@pytest.mark.parametrize(("wheel", "platform"), [
    ("onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_aarch64.whl", "linux-arm64"),
    ("onnxruntime-1.31.1-cp311-cp311-macosx_14_0_arm64.whl", "macos-arm64"),
    ("onnxruntime-1.31.1-cp311-cp311-win_arm64.whl", "windows-arm64"),
    ("opencv_python_headless-4.11.0.86-cp37-abi3-macosx_13_0_arm64.whl", "macos-arm64"),
    ("x-1.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "linux-x64"),
])
def test_wheel_platforms(wheel: str, platform: str) -> None:
    assert build_extension.wheel_platform(wheel) == platform
