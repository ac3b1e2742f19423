"""Stage 4, sequences: a video or an image folder in, per-frame parameters and keyframe arrays out.

Takes a frame source (`frames.open_source`: a video file or a folder of images) and gives a
`pipeline.SequenceResult` (per-frame expression, jaw, eyelids, gaze, emotion probabilities and
intensity; cached as `.npz`) from the tracker, the encoder in batches, gap filling and One-Euro
smoothing (`smoothing`); `plan` turns it into one photo-style plan per frame on the target's
channels, and `keyframes` lays those out as arrays for Blender's bulk keyframe calls.
"""
