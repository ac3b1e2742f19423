"""The Reconstruct panel's settings and last result: one PropertyGroup on the Scene.

Everything here is saved with the .blend (the artist's choices and what was read last); scratch
state such as model sessions lives in `sessions.py`, never here. Every property has a description,
which Blender shows as its tooltip.
"""

from __future__ import annotations

from typing import cast

import bpy


def _is_mesh(_self: bpy.types.PropertyGroup, obj: bpy.types.Object) -> bool:
    return obj.type == "MESH"


class FIELDS_PG_settings(bpy.types.PropertyGroup):
    target: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Target",
        description="Mesh whose shape keys (and jaw/eye bones) take the expression; empty uses the active mesh",
        type=bpy.types.Object,
        poll=_is_mesh,
    )
    source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Photo from",
        description="Where the photo comes from",
        items=(("FILE", "File", "A photo file on disk"),
               ("IMAGE", "Image", "An image already loaded in Blender")),
        default="FILE",
    )
    filepath: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Photo",
        description="Photo of a face (JPEG, PNG, TIFF, WebP, BMP)",
        subtype="FILE_PATH",
        default="",
    )
    image: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Image",
        description="An image loaded in Blender (its file is read when it has one, else its pixels)",
        type=bpy.types.Image,
    )
    face: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Face",
        description="Which face to use when the photo holds several, 1 being the largest; 0 uses the only "
        "face and reports an error when there are several",
        default=0,
        min=0,
        soft_max=10,
    )
    apply_expression: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Expression", description="Set the expression shape keys", default=True)
    apply_jaw: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Jaw", description="Turn the jaw bone (jaw shape keys on ARKit-named rigs)", default=True)
    apply_eyelids: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Eyelids", description="Set the eyelid (blink) shape keys", default=True)
    apply_gaze: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Gaze", description="Turn the eye bones (eye-look shape keys on ARKit-named rigs)", default=True)
    match_shape: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Match face shape",
        description="Also fit the head's identity shape keys to the photo's landmarks (regularised least "
        "squares through the head's landmark embedding, the expression read held fixed), so the head "
        "takes on the person's proportions. Needs a head made by Add Head with Identity shape keys",
        default=False,
    )
    insert_keyframes: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Insert keyframes",
        description="Key the predicted weights at the current frame (auto-keying does the same)",
        default=False,
    )
    key_predicted_intensity: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Predicted",
        description="Key Intensity sets the intensity to the one read from the photo before keying it, "
        "instead of keying the current value",
        default=False,
    )

    # Artist controls (issue 13).
    use_neutral: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Calibrate",
        description="Read expressions relative to the neutral reference stored on the target (its rest reads "
        "0 and full expressions keep their range); off reads them as they are",
        default=True)
    neutral_from: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Neutral from",
        description="What Set Neutral reads the actor's resting face from",
        items=(("PHOTO", "Photo", "The photo chosen above (Photo), its only or chosen face"),
               ("FRAMES", "Frames", "Frames First to Last of the sequence chosen in Apply to Sequence "
                "(a video, images, or a Live Link Face take at the scene's rate)"),
               ("AUTO", "Auto", "The calmest half second of the sequence chosen in Apply to Sequence")),
        default="PHOTO")
    neutral_first: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="First", description="First source frame of the actor at rest (1 is the clip's first frame)",
        default=1, min=1)
    neutral_last: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Last", description="Last source frame of the actor at rest, included", default=6, min=1)
    head_pose_photo: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Photo",
        description="Reconstruct also turns the head bone by the face's turn in the photo (relative to the neutral "
        "when one is set). Off by default: a photo's pose is the photographer's, and the character is usually "
        "already posed", default=False)
    seq_head_pose: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Sequence",
        description="Apply to Sequence also keys the head bone's turn in every frame, smoothed with the rest "
        "(relative to the neutral when one is set). On by default: head motion is part of a performance",
        default=True)
    head_bone: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Head bone",
        description="Bone of the target's armature that the head pose turns (e.g. neck, or root to turn the whole "
        "FIELDS head with its shoulders); empty uses a bone named neck or head, or skips the head pose with a note",
        default="")
    seq_min_confidence: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Min confidence",
        description="Frames whose face score (keyed on 'fields_confidence') is below this are treated as frames "
        "without a face and filled as No face says; 0 uses every face found",
        default=0.0, min=0.0, max=1.0, subtype="FACTOR")

    # Apply to sequence.
    seq_source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Sequence from",
        description="Where the performance comes from",
        items=(("VIDEO", "Video", "A video file on disk (MP4, MOV, AVI, MKV, WebM ...)"),
               ("FOLDER", "Folder", "A folder of numbered images, read in natural order (frame2 before frame10)"),
               ("CLIP", "Clip", "A movie clip loaded in Blender (Movie Clip Editor)"),
               ("IMAGE", "Image", "An image sequence or movie loaded in Blender as an image"),
               ("CSV", "Live Link", "A Live Link Face CSV take (Epic's iPhone app, or a FIELDS export): its "
                "ARKit weights, resampled at the scene's frame rate")),
        default="VIDEO",
    )
    seq_csv_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="CSV", description="Live Link Face CSV take (Timecode, BlendShapeCount, the 52 ARKit weights, "
        "head and eye angles)", subtype="FILE_PATH", default="")
    seq_timecode_fps: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Timecode rate",
        description="Frames per second the CSV's timecodes count in (HH:MM:SS:FF): 60 is the Live Link Face "
        "app's default, 30 its other choice. Exports write this rate too",
        default=60, min=1, soft_max=120)
    seq_filepath: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Video", description="Video file of the performance", subtype="FILE_PATH", default="")
    seq_directory: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Folder", description="Folder of numbered images of the performance, all the same size",
        subtype="DIR_PATH", default="")
    seq_clip: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Clip", description="Movie clip whose file (a video, or an image sequence's folder) is read",
        type=bpy.types.MovieClip)
    seq_image: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Image", description="Image sequence or movie loaded as an image; its file (or its folder) is read",
        type=bpy.types.Image)
    seq_frame_first: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="First", description="First source frame to read (1 is the first frame of the video or folder)",
        default=1, min=1)
    seq_frame_last: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Last", description="Last source frame to read, included; 0 reads to the end", default=0, min=0)
    seq_frame_step: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Step", description="Read every n-th source frame (2 keys every other frame, keeping the timing)",
        default=1, min=1, soft_max=10)
    seq_target_start: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Start at", description="Scene frame where the first source frame is keyed", default=1)
    seq_face: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Face", description="Which face to follow when several are in view, 1 being the largest",
        default=1, min=1, soft_max=5)
    seq_key_intensity: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Key intensity",
        description="Also key the intensity control with the intensity read in each frame. The keyed weights "
        "already show each expression as read, so this weakens them (shape keys show weight x intensity). "
        "Either way the intensity read is keyed on 'fields_predicted_intensity'",
        default=False)
    seq_gaps: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="No face",
        description="What frames without a face (or unreadable frames) get",
        items=(("INTERPOLATE", "Interpolate", "Blend across the gap from the face before to the face after"),
               ("HOLD", "Hold", "Keep the last face's values until a face is found again"),
               ("LEAVE", "Leave gap", "Write no key there (the curves run straight across; fill them by hand)")),
        default="INTERPOLATE",
    )
    seq_smooth: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Smooth", description="Remove frame-to-frame jitter with an adaptive (One-Euro) filter", default=True)
    seq_smooth_steadiness: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Steadiness",
        description="Cutoff in Hz for a still face (One-Euro min cutoff): lower removes more jitter but makes "
        "slow motions lag",
        default=1.0, min=0.01, soft_min=0.1, soft_max=10.0, precision=2)
    seq_smooth_responsiveness: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Responsiveness",
        description="How quickly smoothing lets go during fast motion (One-Euro beta): higher follows quick "
        "expressions with less lag, lower is smoother",
        default=10.0, min=0.0, soft_max=50.0, precision=1)
    seq_smooth_speed_cutoff: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Speed smoothing",
        description="Cutoff in Hz for the speed estimate (One-Euro d-cutoff); rarely needs changing",
        default=1.0, min=0.01, soft_max=10.0, precision=2)
    # Live capture.
    live_camera: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Camera",
        description="Camera to read: its number (0 is the first webcam, 1 the next ...), a stream URL "
        "(rtsp://, http://) or a video file standing in for a camera",
        default="0")
    live_record: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Record",
        description="While live capture runs, record the performance; turning it off (or stopping) keys it "
        "from the frame where recording began, at the scene's frame rate, with Apply to Sequence's gap, "
        "smoothing and intensity settings",
        default=False)
    seq_result: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Last sequence", description="What the last Apply to Sequence keyed", default="")

    # The last result, shown in the panel (read-only there).
    result_emotion: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Emotion", description="Emotion read from the last photo", default="")
    result_confidence: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Confidence", description="Probability the encoder gave the emotion read", default=0.0,
        min=0.0, max=1.0, subtype="FACTOR")
    result_intensity: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Predicted intensity", description="Emotion intensity read from the last photo (0 to 1)",
        default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    result_providers: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Providers", description="ONNX Runtime execution providers the last reconstruction ran on",
        default="")
    result_seconds: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Time", description="Seconds the last reconstruction took", default=0.0, min=0.0, unit="TIME_ABSOLUTE")
    result_shape: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Face shape",
        description="Landmark residual before and after the last Match face shape (mean over all landmarks)",
        default="")
    result_route: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Applied", description="How the last result was applied: direct, FLAME retargeting or ARKit names",
        default="")


def get(context: bpy.types.Context) -> FIELDS_PG_settings:
    return cast(FIELDS_PG_settings, context.scene.fields)  # type: ignore[attr-defined]


classes = (FIELDS_PG_settings,)
_register, _unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc, has-type]


def register() -> None:
    _register()  # type: ignore[has-type]
    bpy.types.Scene.fields = bpy.props.PointerProperty(  # type: ignore[attr-defined, func-returns-value]
        type=FIELDS_PG_settings, name="FIELDS", description="FIELDS: Reconstruct from photo settings")


def unregister() -> None:
    del bpy.types.Scene.fields  # type: ignore[attr-defined]
    _unregister()  # type: ignore[has-type]
