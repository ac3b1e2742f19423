"""Run MediaPipe's own FaceLandmarker (Tasks API) on frames: the parity and latency referee.

Runs inside `.venv-mediapipe` (mediapipe pulls in opencv-contrib-python and numpy 2, which clash
with the project's environment), so it imports nothing from the project. Reads an .npz holding
`frames` (N, H, W, 3) uint8 RGB, runs FaceLandmarker with blendshapes and facial transformation
matrices in IMAGE or VIDEO mode, and writes an .npz with, per frame, the first face's landmarks
in pixels (N, 478, 3; NaN when no face), blendshape scores (N, 52) in the network's order,
matrices (N, 4, 4), the face count and per-frame wall-clock latency in seconds. Usage:
    .venv-mediapipe/bin/python tools/mediapipe_referee.py TASK FRAMES.npz OUT.npz --mode image|video
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("frames")
    parser.add_argument("out")
    parser.add_argument("--mode", choices=("image", "video"), default="image")
    parser.add_argument("--num-faces", type=int, default=1)
    args = parser.parse_args()

    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    frames = np.load(args.frames)["frames"]
    mode = vision.RunningMode.VIDEO if args.mode == "video" else vision.RunningMode.IMAGE
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=args.task), running_mode=mode, num_faces=args.num_faces,
        output_face_blendshapes=True, output_facial_transformation_matrixes=True)
    n, height, width = frames.shape[:3]
    landmarks = np.full((n, 478, 3), np.nan)
    blendshapes = np.full((n, 52), np.nan)
    matrices = np.full((n, 4, 4), np.nan)
    counts = np.zeros(n, dtype=np.int64)
    latency = np.zeros(n)
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        for i, frame in enumerate(frames):
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
            start = time.perf_counter()
            if mode == vision.RunningMode.VIDEO:
                result = landmarker.detect_for_video(image, int(i * 1000 / 30))
            else:
                result = landmarker.detect(image)
            latency[i] = time.perf_counter() - start
            counts[i] = len(result.face_landmarks)
            if counts[i]:
                landmarks[i] = [(p.x * width, p.y * height, p.z * width) for p in result.face_landmarks[0]]
                blendshapes[i] = [c.score for c in result.face_blendshapes[0]]
                matrices[i] = np.asarray(result.facial_transformation_matrixes[0])
    np.savez(args.out, landmarks=landmarks, blendshapes=blendshapes, matrices=matrices, counts=counts,
             latency=latency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
