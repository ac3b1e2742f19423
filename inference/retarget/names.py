"""How widespread character systems name their ARKit-compatible shapes, beyond ARKit's own spellings.

`arkit.arkit_key` already reads ARKit's names in their common spellings (camelCase, snake, `_L`/`_R`,
`.L`/`.R`, Left/Right, namespaces, any case), which covers Ready Player Me, VRoid/VRM perfect sync
and Faceit as they are. Two systems name some units differently:

- **Character Creator 4 / iClone (Reallusion), "CC4 Extended" facial profile**: `Brow_Drop_L`,
  `Eye_L_Look_Down`, `Mouth_Down_Lower_L`, and some units split in several keys (`browInnerUp` is
  `Brow_Raise_Inner_L` + `_R`). `CC4_EXTENDED` lists the keys of every unit whose CC4 name
  `arkit_key` would not read; the others (`Eye_Blink_L`, `Mouth_Smile_R`, `Jaw_Forward`...) it reads.
  CC4 opens the jaw and sticks the tongue out with bones (`CC_Base_JawRoot`, `CC_Base_Tongue01`),
  so `jawOpen` and `tongueOut` have no key there.
- **Daz Genesis 8.1 / 9 FACS morphs**: the unit's ARKit name behind a FACS prefix and an optional
  half-shape suffix, as Daz exports them (`facs_bs_MouthSmileLeft_div2`, `facs_jnt_EyesWideLeft`,
  `facs_ctrl_CheekPuff`, `facs_BrowDownLeft`, sometimes after a mesh name `Genesis9__`).
  `daz_core` strips those so `arkit_key` reads the rest.

Sources are cited in docs/USAGE.md. Pure Python; must not import bpy.
"""

from __future__ import annotations

import re

# ARKit unit -> the CC4 Extended keys that make it (only where arkit_key cannot read the CC4 name).
CC4_EXTENDED: dict[str, tuple[str, ...]] = {
    "browDownLeft": ("Brow_Drop_L",), "browDownRight": ("Brow_Drop_R",),
    "browInnerUp": ("Brow_Raise_Inner_L", "Brow_Raise_Inner_R"),
    "browOuterUpLeft": ("Brow_Raise_Outer_L",), "browOuterUpRight": ("Brow_Raise_Outer_R",),
    "cheekPuff": ("Cheek_Puff_L", "Cheek_Puff_R"),
    "cheekSquintLeft": ("Cheek_Raise_L",), "cheekSquintRight": ("Cheek_Raise_R",),
    "eyeLookDownLeft": ("Eye_L_Look_Down",), "eyeLookDownRight": ("Eye_R_Look_Down",),
    "eyeLookUpLeft": ("Eye_L_Look_Up",), "eyeLookUpRight": ("Eye_R_Look_Up",),
    # The left eye looks in towards the nose, i.e. to the character's right.
    "eyeLookInLeft": ("Eye_L_Look_R",), "eyeLookInRight": ("Eye_R_Look_L",),
    "eyeLookOutLeft": ("Eye_L_Look_L",), "eyeLookOutRight": ("Eye_R_Look_R",),
    "jawLeft": ("Jaw_L",), "jawRight": ("Jaw_R",),
    "mouthLeft": ("Mouth_L",), "mouthRight": ("Mouth_R",),
    "mouthFunnel": ("Mouth_Funnel_Up_L", "Mouth_Funnel_Up_R", "Mouth_Funnel_Down_L", "Mouth_Funnel_Down_R"),
    "mouthPucker": ("Mouth_Pucker_Up_L", "Mouth_Pucker_Up_R", "Mouth_Pucker_Down_L", "Mouth_Pucker_Down_R"),
    "mouthRollLower": ("Mouth_Roll_In_Lower_L", "Mouth_Roll_In_Lower_R"),
    "mouthRollUpper": ("Mouth_Roll_In_Upper_L", "Mouth_Roll_In_Upper_R"),
    "mouthLowerDownLeft": ("Mouth_Down_Lower_L",), "mouthLowerDownRight": ("Mouth_Down_Lower_R",),
    "mouthUpperUpLeft": ("Mouth_Up_Upper_L",), "mouthUpperUpRight": ("Mouth_Up_Upper_R",),
}

_DAZ = re.compile(r"^(?:[A-Za-z0-9]+__)?facs_(?:bs_|cbs_|ctrl_|jnt_)?(?P<core>.+?)(?:_div2)?$")
_DAZ_ALIASES = {"EyesWide": "EyeWide"}  # Daz's joint controls say "EyesWideLeft" for eyeWideLeft


def daz_core(name: str) -> str | None:
    """The ARKit-like part of a Daz FACS morph name (`facs_bs_MouthSmileLeft_div2` -> `MouthSmileLeft`),
    or None when the name is not one."""
    match = _DAZ.match(name.strip())
    if match is None:
        return None
    core = match.group("core")
    for alias, arkit in _DAZ_ALIASES.items():
        if core.startswith(alias):
            core = arkit + core[len(alias):]
    return core
