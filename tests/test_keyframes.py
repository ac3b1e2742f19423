"""Merging new keys into an F-curve's existing points (issue 10: the merge left the Blender layer
for `inference.sequence.keyframes`, so it is checked here without Blender; the Blender tests of
Apply to sequence check it through `foreach_set` on bpy 4.5 and 5.0)."""

from __future__ import annotations

import numpy as np

from inference.sequence.keyframes import HANDLE_TYPES, INTERPOLATION, KEY_ATTRIBUTES, fcurve_keys, merge_keys


def _old(frames: list[float], values: list[float]) -> dict[str, np.ndarray]:
    """Points as foreach_get reads them: CONSTANT, VECTOR handles one frame to each side."""
    n = len(frames)
    co = np.ravel(np.column_stack([frames, values])).astype(np.float32)
    return {"co": co, "interpolation": np.full(n, INTERPOLATION["CONSTANT"], np.int32),
            "handle_left_type": np.full(n, HANDLE_TYPES["VECTOR"], np.int32),
            "handle_right_type": np.full(n, HANDLE_TYPES["VECTOR"], np.int32),
            "handle_left": (co.reshape(-1, 2) - [1, 0]).ravel().astype(np.float32),
            "handle_right": (co.reshape(-1, 2) + [1, 0]).ravel().astype(np.float32)}


def test_keys_outside_the_range_are_kept_with_their_settings_and_the_rest_replaced() -> None:
    old = _old([1, 5, 10, 20], [0.1, 0.5, 1.0, 2.0])
    new = fcurve_keys(np.array([5.0, 6.0, 7.0]), np.array([[0.7], [0.8], [0.9]]), ["w"])[0]
    merged = merge_keys(old, new, 5.0, 7.0)
    assert set(merged) == {name for name, _, _ in KEY_ATTRIBUTES}
    assert merged["co"][0::2].tolist() == [1, 5, 6, 7, 10, 20]
    np.testing.assert_allclose(merged["co"][1::2], [0.1, 0.7, 0.8, 0.9, 1.0, 2.0], rtol=1e-6)
    constant, linear = INTERPOLATION["CONSTANT"], INTERPOLATION["LINEAR"]
    assert merged["interpolation"].tolist() == [constant, linear, linear, linear, constant, constant]
    vector, auto = HANDLE_TYPES["VECTOR"], HANDLE_TYPES["AUTO_CLAMPED"]
    assert merged["handle_left_type"].tolist() == merged["handle_right_type"].tolist() == [vector, auto, auto,
                                                                                          auto, vector, vector]
    # Kept keys keep their handles; new keys' handles sit on the keys until update() sets them.
    assert merged["handle_left"].reshape(-1, 2)[[0, 4, 5], 0].tolist() == [0, 9, 19]
    assert np.array_equal(merged["handle_right"].reshape(-1, 2)[1:4], merged["co"].reshape(-1, 2)[1:4])
    assert all(len(merged[name]) == width * 6 for name, width, _ in KEY_ATTRIBUTES)


def test_an_empty_curve_takes_the_new_keys_as_they_are() -> None:
    new = fcurve_keys(np.array([3.0, 4.0]), np.array([[1.0], [2.0]]), ["w"])[0]
    empty = {name: np.empty(0, dtype=dtype) for name, _, dtype in KEY_ATTRIBUTES}
    merged = merge_keys(empty, new, 3.0, 4.0)
    assert np.array_equal(merged["co"], new.co) and np.array_equal(merged["interpolation"], new.interpolation)
    assert np.array_equal(merged["handle_left"], new.co)


def test_rekeying_the_same_range_leaves_one_key_per_frame() -> None:
    first = fcurve_keys(np.arange(1.0, 11.0), np.zeros((10, 1)), ["w"])[0]
    again = fcurve_keys(np.arange(1.0, 11.0), np.ones((10, 1)), ["w"])[0]
    merged = merge_keys({"co": first.co, "interpolation": first.interpolation,
                         "handle_left_type": first.handles, "handle_right_type": first.handles,
                         "handle_left": first.co, "handle_right": first.co}, again, 1.0, 10.0)
    assert merged["co"][0::2].tolist() == list(range(1, 11)) and set(merged["co"][1::2].tolist()) == {1.0}
