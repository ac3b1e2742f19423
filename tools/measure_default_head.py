"""Measure the default head against MediaPipe's blendshape network and write the tables in docs.

Scores the neutral head and each of the 51 scored ARKit units driven alone at weight 1 (the fixed
frontal orthographic view of `inference.default_head.project_frontal`), prints the summary, and
rewrites the generated sections of `docs/DEFAULT_HEAD.md` (between `<!-- name:begin -->` and
`<!-- name:end -->` markers): the ARKit mapping table and the purity table. Development tool.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.head.default_head import (  # noqa: E402
    ARKIT_TO_PARAMS,
    load_default_head,
    mirror_name,
    purity_table,
    referee_scores,
)
from inference.head.face_model import JOINT_NAMES  # noqa: E402
from inference.perception.blendshapes import ARKIT_NAMES, MEDIAPIPE_NAMES, BlendshapeNetwork  # noqa: E402

DOC = ROOT / "docs" / "DEFAULT_HEAD.md"


def summary(rows: list) -> dict[str, float]:
    by_unit = {row.unit: row for row in rows}
    wins = sum(row.top_unit == row.unit for row in rows)
    gaps = [
        abs(row.intended_increase - by_unit[mirror_name(row.unit)].intended_increase)
        for row in rows
        if mirror_name(row.unit) in by_unit
    ]
    return {
        "wins": wins,
        "mean_increase": float(np.mean([r.intended_increase for r in rows])),
        "worst_mirror_gap": float(max(gaps)),
    }


def mapping_markdown(mapping: object) -> str:
    lines = ["| # | ARKit unit | head parameter | at weight 1 |", "|---|---|---|---|"]
    for i, name in enumerate(ARKIT_NAMES):
        target = ARKIT_TO_PARAMS[name]
        if target[0] == "expression":
            what, amount = f"expression shape key `{name}`", "the key at 1.0"
        elif target[0] == "eyelid":
            what, amount = (
                f"eyelid shape `{'l_eyelid' if target[1] == 0 else 'r_eyelid'}` (key `{name}`)",
                "1.0 (closed)",
            )
        else:
            _, joint, axis, sign = target
            angle = np.degrees(mapping.pose[i, joint, axis])  # type: ignore[attr-defined]
            what = f"joint `{JOINT_NAMES[joint]}`, rotation about FLAME {'xyz'[axis]}"
            amount = f"{angle:+.0f} degrees"
        lines.append(f"| {i} | `{name}` | {what} | {amount} |")
    return "\n".join(lines)


def purity_markdown(neutral: dict[str, float], rows: list, stats: dict[str, float]) -> str:
    worst = max((k for k in MEDIAPIPE_NAMES[1:]), key=lambda k: neutral[k])
    lines = [
        f"Neutral head: highest score {neutral[worst]:.3f} (`{worst}`), target <= 0.15.",
        "",
        f"Intended unit has the largest increase for **{stats['wins']} of {len(rows)}** units (target >= 40); "
        f"mean intended increase **{stats['mean_increase']:.3f}** (target >= 0.5); worst left/right gap "
        f"**{stats['worst_mirror_gap']:.3f}** (target <= 0.1).",
        "",
        "| unit | intended increase | largest increase | by | ok |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        ok = "yes" if row.top_unit == row.unit else "no"
        lines.append(
            f"| `{row.unit}` | {row.intended_increase:+.3f} | `{row.top_unit}` | {row.top_increase:+.3f} | {ok} |"
        )
    return "\n".join(lines)


def replace_section(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{DOC} has no '{name}' section markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-docs", action="store_true", help="print only, leave docs/ alone")
    args = parser.parse_args(argv)
    network = BlendshapeNetwork()
    model, mapping = load_default_head()
    neutral = referee_scores(network, model, mapping)
    rows = purity_table(network, model, mapping)
    stats = summary(rows)
    print(
        f"neutral max {max(neutral[k] for k in MEDIAPIPE_NAMES[1:]):.3f}; wins {stats['wins']}/51; "
        f"mean increase {stats['mean_increase']:.3f}; worst mirror gap {stats['worst_mirror_gap']:.3f}"
    )
    for row in rows:
        flag = "" if row.top_unit == row.unit else f"   <- {row.top_unit} {row.top_increase:+.2f}"
        print(f"  {row.unit:20s} {row.intended_increase:+.3f}{flag}")
    if not args.no_docs and DOC.exists():
        text = replace_section(DOC.read_text(), "arkit-mapping", mapping_markdown(mapping))
        text = replace_section(text, "purity", purity_markdown(neutral, rows, stats))
        DOC.write_text(text)
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
