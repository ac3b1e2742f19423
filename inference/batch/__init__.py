"""Batch processing on Ray: many videos, image folders and photos into one folder, resumable.

`python -m inference batch INPUTS... --out DIR [--workers N] [--ray ADDRESS]` (`cli.py`). The
driver (`driver.py`) plans the inputs and skips finished ones by content hash (`inputs.py`) before
Ray starts, then `run.py` runs the rest on Ray actors, each a `work.Worker` that loads the models
once and processes an input exactly as the single-input command line does. Layout of DIR:
`<name>.npz` per video or image folder (plus `<name>.csv` / `<name>.json` when asked), `<name>.json`
per photo (photo mode's JSON object), `batch-summary.json`, and `.fields-batch/<name>.json` state
records that make a re-run resume. Ray is imported lazily, in `run.py` only, and this package is
left out of the Blender extension zip. Must not import bpy.
"""
