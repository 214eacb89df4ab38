"""What stages compute from detections: tracks, events, scene changes, snapshots."""
