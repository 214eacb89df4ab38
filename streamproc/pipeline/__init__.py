"""Building a pipeline from settings and running it."""
