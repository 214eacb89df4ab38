"""Model loading and inference: LiteRT runtime wrapper, model registry, BlazeFace detector."""
