"""Build the installable FIELDS extension zips with Blender's own extension builder.

Two variants, split per platform by `blender_ext.py build --split-platforms`:
* cpu (default): the manifest as committed, bundling the CPU `onnxruntime` wheel for every platform.
* gpu: `onnxruntime-gpu` for linux-x64 and windows-x64 only; it needs the user's CUDA 13 and cuDNN 9.
Both install the same `onnxruntime` module. Wheels are fetched unmodified from PyPI with
`pip download` into wheels/ (a cache reused between builds) and copied into a staging folder with
the extension's own files; the builder then zips that folder into dist/<variant>/.

    python tools/build_extension.py [--variant cpu|gpu|all] [--platform linux-x64] [--out dist]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSION_FILES = ("__init__.py", "blender_manifest.toml", "LICENSE", "fields_addon", "inference")
GPU_PLATFORMS = ("linux-x64", "windows-x64")
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$")
_BLENDER_PLATFORM = {"manylinux": "linux", "win": "windows", "macosx": "macos"}


def blender_ext_script() -> Path:
    """Blender's extension CLI, shipped inside the bpy wheel."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("the bpy package is not installed: run `make setup` first")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit("blender_ext.py not found inside the bpy package")
    return found[-1]


def wheel_platform(filename: str) -> str:
    """Blender platform name of a wheel file, e.g. linux-x64."""
    tag = _WHEEL.match(filename)
    if not tag:
        raise SystemExit(f"not a wheel file name: {filename}")
    plat = tag["plat"].split(".")[-1]
    os_name = _BLENDER_PLATFORM[next(k for k in _BLENDER_PLATFORM if plat.startswith(k))]
    arch = "x64" if plat.endswith(("x86_64", "amd64")) else "arm64"
    return f"{os_name}-{arch}"


def current_platform() -> str:
    """Blender's name for the platform this runs on, e.g. linux-x64."""
    os_name = {"linux": "linux", "win32": "windows", "darwin": "macos"}[sys.platform]
    arch = "x64" if platform.machine().lower() in ("x86_64", "amd64") else "arm64"
    return f"{os_name}-{arch}"


def variant_wheels(manifest: dict, variant: str) -> tuple[list[str], list[str]]:
    """(platforms, wheel file names) of a variant."""
    wheels = [Path(w).name for w in manifest.get("wheels", [])]
    platforms = list(manifest["platforms"])
    if variant == "gpu":
        platforms = [p for p in platforms if p in GPU_PLATFORMS]
        wheels = [w.replace("onnxruntime-", "onnxruntime_gpu-", 1) for w in wheels if wheel_platform(w) in platforms]
    return platforms, wheels


def fetch_wheel(filename: str, cache: Path) -> Path:
    target = cache / filename
    if target.exists():
        return target
    tag = _WHEEL.match(filename)
    assert tag is not None
    name = tag["name"].replace("_", "-")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.11", "--implementation", "cp", "--abi", tag["abi"],
           "--platform", tag["plat"].split(".")[-1], f"{name}=={tag['version']}", "--dest", str(cache)]
    subprocess.run(cmd, check=True)
    if not target.exists():
        raise SystemExit(f"pip did not produce {filename}; found {sorted(p.name for p in cache.glob('*.whl'))}")
    return target


def build(variant: str, only: list[str], out: Path, cache: Path) -> list[Path]:
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    platforms, wheels = variant_wheels(manifest, variant)
    if only:
        platforms = [p for p in platforms if p in only]
        wheels = [w for w in wheels if wheel_platform(w) in platforms]
    if not platforms:
        raise SystemExit(f"no platform of the {variant} variant matches {only}")
    stage = ROOT / "build" / f"stage-{variant}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for name in EXTENSION_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, stage / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, stage / name)
    cache.mkdir(parents=True, exist_ok=True)
    (stage / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(fetch_wheel(wheel, cache), stage / "wheels" / wheel)
    text = (stage / "blender_manifest.toml").read_text()
    text = re.sub(r"(?ms)^platforms = \[.*?\]\n", f"platforms = {toml_list(platforms)}\n", text)
    text = re.sub(r"(?ms)^wheels = \[.*?\]\n", f"wheels = {toml_list('./wheels/' + w for w in wheels)}\n", text)
    (stage / "blender_manifest.toml").write_text(text)

    target = out / variant
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)  # the builder needs the output folder to exist
    subprocess.run([sys.executable, str(blender_ext_script()), "build", "--source-dir", str(stage),
                    "--output-dir", str(target), "--split-platforms"], check=True)
    return sorted(target.glob("*.zip"))


def toml_list(items) -> str:  # type: ignore[no-untyped-def]
    return "[\n" + "".join(f'  "{item}",\n' for item in items) + "]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("cpu", "gpu", "all"), default="all")
    parser.add_argument("--platform", action="append", default=[], help="only this Blender platform (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--wheel-cache", type=Path, default=ROOT / "wheels")
    args = parser.parse_args(argv)
    variants = ("cpu", "gpu") if args.variant == "all" else (args.variant,)
    for variant in variants:
        for zip_path in build(variant, args.platform, args.out, args.wheel_cache):
            print(f"{variant}: {zip_path.relative_to(ROOT) if zip_path.is_relative_to(ROOT) else zip_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
