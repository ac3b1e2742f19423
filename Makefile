# Everything runs from a checkout; `make setup` (implied by the others) builds the environments.
.PHONY: setup test demo build models head bench

setup:
	@bash tools/setup.sh

# Every test: ruff, mypy, pure and Blender tests on bpy 4.5, then the Blender tests on bpy 5.0.
test: setup
	.venv/bin/python -m pytest tests
	.venv50/bin/python -m pytest tests/blender

# The add-on's main job, headless: build and install the extension into a fresh Blender, add a head,
# reconstruct the sample photo, key the intensity, save out/demo.blend and render out/demo.png.
demo: setup
	.venv/bin/python tools/demo.py $(if $(FLAME),--flame "$(FLAME)") $(if $(EMBEDDING),--embedding "$(EMBEDDING)")

# The installable zips, CPU and GPU variants, per platform, in dist/.
build: setup
	.venv/bin/python tools/build_extension.py

# Re-derive inference/models/ from the pinned MediaPipe wheel (needs the ~2 GB converter env).
models: setup
	.venv/bin/python tools/fetch_models.py

# Re-derive the default head (inference/models/ict_head.npz) from the ICT Face Model in ../shared/data,
# and our MediaPipe landmark embedding of it (renders it headlessly and reads the renders).
head: setup
	.venv/bin/python tools/make_ict_head.py
	.venv/bin/python tools/embed_ict_landmarks.py solve

bench: setup
	.venv/bin/python tools/bench_head.py
	.venv/bin/python tools/bench_reconstruct.py
