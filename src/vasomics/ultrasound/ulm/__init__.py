"""Ultrasound localization microscopy: detect, localize, track and render microbubbles (or
red-blood-cell speckle in contrast-free mode)."""

from vasomics.ultrasound.ulm.pipeline import ULMParams, ULMResult, localize_stack, run_ulm

__all__ = ["ULMParams", "ULMResult", "localize_stack", "run_ulm"]
