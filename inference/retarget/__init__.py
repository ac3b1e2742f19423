"""Stage 3, retarget: an `Expression` and a description of the artist's target in, a `Plan` out.

Takes the encoder's prediction (parameters of its own face model) and a `plan.Target` (the
target's shape keys, bones and the face model it was built from) and gives a `plan.Plan`: weights
per shape key and axis-angles per bone, at intensity 1. Three routes: direct (the same face
model), FLAME (`solver.Retargeter` over landmark correspondences from `correspondence`) and
ARKit names (`arkit`). Pure numpy, no Blender: the add-on writes the plan.
"""
