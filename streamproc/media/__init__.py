"""Pictures beyond the core: the pixel plan, still images from bytes, crops and JPEG."""
