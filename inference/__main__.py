"""Command line: `python -m inference PHOTO --json` prints one JSON object describing the faces.

For pipelines and render farms. The object holds `faces` (each `bbox`, `score`, `landmarks_px`
478x3, `blendshapes` name -> score, `matrix` 4x4, and from the FIELDS encoder `expression` name ->
value, `jaw`, `eyelids`, `gaze`, `emotion` {`label`, `probs`, `intensity`}), `model` (the encoder's
name, sha256 and face model), `providers`, and the image's `width`/`height`. Exit status 0 on success (also when no face
is found: `faces` is then empty), 2 on a usage error, 1 with a one-line message naming the file
on any other failure. Must not import bpy.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .errors import FieldsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inference", description="FIELDS face perception on a photo.")
    parser.add_argument("photo", help="image file (JPEG, PNG, TIFF, WebP, BMP...)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    parser.add_argument("--max-faces", type=int, default=None, help="keep at most this many faces, largest first")
    parser.add_argument("--indent", type=int, default=None, help="indent the JSON for reading")
    parser.add_argument("--perception-only", action="store_true", help="skip the expression/emotion encoder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from .perception import Perception

        result = Perception(max_faces=args.max_faces).run(args.photo)
        payload = {"image": args.photo, **result.to_json()}
        if not args.perception_only:
            from .encoder import ExpressionEncoder

            encoder = ExpressionEncoder()
            payload["model"] = encoder.describe()
            for face, entry in zip(result.faces, payload["faces"], strict=True):
                scores = np.array(list(face.blendshapes.values()))
                entry.update(encoder.predict_face(face.landmarks_px, scores, result.width, result.height).to_json())
    except FieldsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # one line for the farm's log, whatever broke
        print(f"error: '{args.photo}' could not be processed: {type(error).__name__}: {error}".splitlines()[0],
              file=sys.stderr)
        return 1
    print(json.dumps(payload, indent=args.indent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
