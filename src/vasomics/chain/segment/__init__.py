"""Vessel segmentation from images (see :func:`vasomics.chain.segment.api.segment`)."""
