"""The face models every stage shares: FLAME-format files and what is computed from them.

Takes a FLAME 2020/2023 pickle or a FLAME-format `.npz` (`face_model.load_face_model`, through the
restricted unpickler in `safe_pickle`) and gives a frozen `FaceModel`; `forward` is the numpy
FLAME forward model every other implementation is tested against; `rig` holds the maths of the
Blender rig (bone axes, driver expressions); `default_head` is the open FIELDS head (vertex i is
MediaPipe landmark i) with its ARKit table. Not a pipeline stage: the encoder is trained for one
of these models, retargeting maps between two, and the add-on builds heads from them.
"""
