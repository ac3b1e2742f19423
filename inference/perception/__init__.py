"""Stage 1, perception: a photo or video frame in, `Face`s out.

Takes an image (a path or an array) and gives, per face, the detector's box and score, MediaPipe's
478 landmarks in image pixels, its 52 blendshape scores as an array in `MEDIAPIPE_NAMES` order,
and the head pose solved once (the facial transformation matrix and the landmarks lifted into
metric space). It is MediaPipe's FaceLandmarker on ONNX Runtime: image I/O (`image`), detector,
crop, landmark and blendshape networks, the geometry pipeline (`geometry`, `pose`), the session
factory (`runtime`) and the photo/video drivers (`pipeline`: `Perception`, `Tracker`).
"""
