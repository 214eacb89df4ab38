"""The core records and helpers every layer uses: frames, pictures, errors, statistics."""
