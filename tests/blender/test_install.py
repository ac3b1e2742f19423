"""Build the CPU zip with Blender's builder and install it into a fresh Blender user folder, as an
artist would (issue 2). The install runs in a subprocess: Blender reads its user folder once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cpu_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_extension.py"), "--variant", "cpu",
                    "--platform", "linux-x64", "--out", str(out)], check=True, cwd=ROOT)
    (zip_path,) = (out / "cpu").glob("*.zip")
    return zip_path


def test_zip_holds_the_extension_and_its_wheel_only(cpu_zip: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(cpu_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "wheels/onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl" in names
    assert any(n.startswith("wheels/opencv_python_headless-4.11.0.86-") for n in names)
    assert any(n.startswith("inference/models/") for n in names)
    assert "inference/payloads.py" in names  # shared by the photo CLI, which ships
    for unwanted in ("tests/", "training/", "docs/", "tools/", ".git", "__pycache__", "inference/batch/"):
        assert not any(unwanted in n for n in names), unwanted


def test_install_enable_use_uninstall(cpu_zip: Path, flame_pickle: Path) -> None:
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("install_check.py")), str(cpu_zip),
                             str(flame_pickle)], capture_output=True, text=True, timeout=300)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("FIELDS-INSTALL-REPORT ")), None)
    assert line, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(line.split(" ", 1)[1])
    assert report["before"] == {"panel": False, "operator": False, "preferences": False}
    assert report["enabled"] == {"panel": True, "operator": True, "preferences": True}
    assert report["heavy_modules_after_enable"] == []
    assert report["onnxruntime_from"] == "onnxruntime/__init__.py"  # the bundled wheel, inside Blender
    assert "CPUExecutionProvider" in report["onnxruntime_providers"]
    assert report["cv2_from"] == "cv2/__init__.py"  # perception's OpenCV, bundled too
    assert report["add_head"] == ["FINISHED"] and report["head"]["rig"]
    assert report["after_uninstall"] == {"panel": False, "operator": False, "preferences": False}
    assert report["left_on_disk"] is False
