"""Persons: the gallery's faces clustered into people (see ``base.py`` for the seam)."""
