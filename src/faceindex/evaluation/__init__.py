"""Accuracy evaluation: labeled folders and pairs files, scored with the engine's own models."""
