"""Sources: decode inputs into bounded per-source frame buffers."""
