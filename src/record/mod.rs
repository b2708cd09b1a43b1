//! Recording: stereo WAV spool files (left = caller, right = callee).
