"""The one validation split of the real data, by person for the photos and by clip for the videos.

`make_split` is deterministic: people are ordered by the sha256 of a seed and their name (no
random state, no dependence on file order); the rarest classes are served first, taking the next
people who carry that class until a fifth of its photos is held out, then further people are held
out in the same order until a fifth of all people are, so every class (fear 21, contempt 9 in all)
has held-out photos and no person is ever on both sides. Clips are held out by the same hash order.
The result is committed as `training/real_split.json`; `load_split` reads it and every training
and measuring run uses it, so the split never drifts. Must not import bpy or touch the images.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inference.files import write_atomic

from .adapters import DataError

SPLIT_FILE = Path(__file__).resolve().parent / "real_split.json"
SEED = "fields-real-split-1"
HELD_OUT_SHARE = 0.2  # of the people, and of each class's photos; the issue asks for >= 0.15
HELD_OUT_CLIPS = 2
RULE = ("by person (file name before the trailing number); people ordered by sha256(seed:name); rarest classes "
        "first take people until 20% of their photos are held out, then people in that order until 20% of people "
        "are; clips: the first 2 in sha256(seed:name) order. Never train on a held-out person or clip.")


@dataclass(frozen=True)
class RealSplit:
    held_out_people: frozenset[str]
    held_out_clips: tuple[str, ...]

    def is_held_out(self, person: str) -> bool:
        return person in self.held_out_people

    def photo_mask(self, people: Sequence[str]) -> list[bool]:
        """True for the rows (by person) that are held out: measure on them, never train on them."""
        return [p in self.held_out_people for p in people]


def _order(names: Iterable[str], seed: str) -> list[str]:
    return sorted(set(names), key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())


def make_split(people: Sequence[str], labels: Sequence[int], clips: Sequence[str], *, seed: str = SEED,
               share: float = HELD_OUT_SHARE, n_clips: int = HELD_OUT_CLIPS) -> RealSplit:
    """Hold out people (row-aligned `people`/`labels`) and clips as the module docstring says."""
    order = _order(people, seed)
    per_person: dict[str, Counter[int]] = {p: Counter() for p in order}
    for person, label in zip(people, labels, strict=True):
        per_person[person][label] += 1
    totals: Counter[int] = Counter(labels)
    held: set[str] = set()
    held_counts: Counter[int] = Counter()

    def hold(person: str) -> None:
        held.add(person)
        held_counts.update(per_person[person])

    for label in sorted(totals, key=lambda c: (totals[c], c)):
        wanted = math.ceil(share * totals[label])
        for person in order:
            if held_counts[label] >= wanted:
                break
            if person not in held and per_person[person][label]:
                hold(person)
    for person in order:
        if len(held) >= math.ceil(share * len(order)):
            break
        if person not in held:
            hold(person)
    return RealSplit(frozenset(held), tuple(sorted(_order(clips, seed)[:n_clips])))


def save_split(split: RealSplit, path: Path = SPLIT_FILE, **provenance: object) -> None:
    body = {"rule": RULE, "seed": SEED,
            **provenance, "held_out_clips": list(split.held_out_clips),
            "held_out_people": sorted(split.held_out_people)}
    write_atomic(path, (json.dumps(body, indent=0) + "\n").encode())


def load_split(path: Path = SPLIT_FILE) -> RealSplit:
    try:
        body = json.loads(path.read_text())
        return RealSplit(frozenset(body["held_out_people"]), tuple(body["held_out_clips"]))
    except FileNotFoundError:
        raise DataError(f"Split file '{path}' does not exist: run `python -m training split-real`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"Split file '{path}' is not a FIELDS real-data split ({exc})") from None
