"""Video tracking (layer 9, beside the pipeline): a face through a video as per-frame expression,
head pose and camera with one identity, ARKit blendshape curves and an animated glTF.

    import facerecon.tracking as tracking
    t = tracking.track("clip.mp4")            # Track: timestamps, status, expression, rotation, ...
    curves = t.arkit_curves()                 # (T, 52) in ARKIT_NAMES order

`track` (the driver), `landmarks` (MediaPipe video mode in a crop window), `debias` (the detector's
error model on each frame, as the pipeline's fast mode), `identity` (keyframes and the clip's identity
by the joint multi-image fit), `smoothing` (the RTS smoother, the temporal term and the one-euro
filter), `gaps` (short gaps interpolated), `files` (expressions.csv, track.json, animation.glb,
preview.mp4), `synthetic` (clips rendered from known parameters, for tests and benchmarks/bench_track.py).
"""
from .gaps import MAX_GAP_FRAMES, fill_gaps
from .identity import identity_from_keyframes, personalised_view, select_keyframes
from .landmarks import FaceLandmarkTracker
from .smoothing import TEMPORAL_TERM, OneEuroFilter
from .track import PartialTrackError, Track, TrackConfig, VideoTracker, track

__all__ = [
    "MAX_GAP_FRAMES", "TEMPORAL_TERM", "FaceLandmarkTracker", "OneEuroFilter", "PartialTrackError", "Track",
    "TrackConfig", "VideoTracker", "fill_gaps", "identity_from_keyframes", "personalised_view", "select_keyframes",
    "track",
]
