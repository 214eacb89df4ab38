"""Settings: one validated object from a YAML file, environment variables and flags."""
