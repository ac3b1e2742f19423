"""The real-data subcommands of `python -m training` (`evaluate-real`, `split-real`), kept apart
from `__main__` so the training commands do not load scikit-learn or the real data's modules."""

from __future__ import annotations

import argparse
import sys

from inference.errors import FieldsError


def real_command(args: argparse.Namespace) -> int:
    try:
        if args.command == "split-real":
            from .real_data import CLIPS, PHOTOS, data_root, person_of, read_labels, sha256_of
            from .real_split import SPLIT_FILE, make_split, save_split

            labels_file = data_root() / PHOTOS / "labels.csv"
            labels = read_labels(labels_file)
            clips = sorted(p.stem for p in (data_root() / CLIPS).glob("*.mp4"))
            split = make_split([person_of(image) for image, _, _ in labels], [e for _, e, _ in labels], clips)
            save_split(split, labels_sha256=sha256_of(labels_file), people=len({person_of(i) for i, _, _ in labels}),
                       clips=clips)
            print(f"wrote {SPLIT_FILE}: {len(split.held_out_people)} people and clips "
                  f"{', '.join(split.held_out_clips)} held out")
        else:
            from .evaluate_real import run

            names = [n.strip() for n in args.readers.split(",") if n.strip()]
            print(run(names, args.cache, args.json))
    except FieldsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
