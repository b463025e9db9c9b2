"""Accuracy metrics (segmentation)."""
