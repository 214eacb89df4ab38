"""Sink plugins: where results go (JSON Lines, annotated video, ...)."""
