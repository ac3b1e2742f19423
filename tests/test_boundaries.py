"""Architecture rules that keep the add-on installable and testable (issue 2): only fields_addon/
imports bpy; the extension's own imports are relative; heavy libraries load inside operators."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLENDER_MODULES = {"bpy", "bmesh", "mathutils", "bpy_extras", "gpu", "bl_math"}
HEAVY = {"onnxruntime", "cv2", "torch", "skimage", "scipy"}


def _imports(path: Path, top_level_only: bool = False) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def _python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def test_only_fields_addon_imports_bpy() -> None:
    # tools/ and tests/ drive Blender from outside; the packages that ship or train must not.
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _python_files("inference", "training")
        for name, level in _imports(path)
        if level == 0 and name.split(".")[0] in BLENDER_MODULES
    ]
    assert not offenders, offenders


def test_inference_imports_with_bpy_blocked() -> None:
    # Ray is blocked too (issue 15): the extension bundles inference/ without it, and even the
    # batch package only imports it when it runs.
    modules = sorted(
        "inference." + ".".join(p.relative_to(ROOT / "inference").with_suffix("").parts)
        for p in (ROOT / "inference").rglob("*.py")
    )
    code = (f"import sys\nfor name in {sorted(BLENDER_MODULES | {'ray'})!r}: sys.modules[name] = None\n"
            + "".join(f"import {m.removesuffix('.__init__')}\n" for m in modules))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_extension_imports_are_relative() -> None:
    # Blender imports the extension as bl_ext.<repo>.fields: an absolute import of our own packages
    # would find nothing there (or a stale copy elsewhere on sys.path).
    ours = {"fields_addon", "inference", "fields"}
    offenders = [
        f"{path.relative_to(ROOT)}: import {name}"
        for path in [ROOT / "__init__.py", *_python_files("fields_addon", "inference")]
        for name, level in _imports(path)
        if level == 0 and name.split(".")[0] in ours
    ]
    assert not offenders, offenders


def test_heavy_libraries_are_not_imported_when_the_addon_is_enabled() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name} at module level"
        for path in [ROOT / "__init__.py", *_python_files("fields_addon")]
        for name, level in _imports(path, top_level_only=True)
        if level == 0 and name.split(".")[0] in HEAVY
    ]
    assert not offenders, offenders
