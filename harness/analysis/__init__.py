"""Analyses over many cells of a results store (no model is loaded)."""
