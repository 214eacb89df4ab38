"""streamproc: video stream processing with BlazeFace face detection and pluggable sinks."""

__version__ = "0.1.0"
