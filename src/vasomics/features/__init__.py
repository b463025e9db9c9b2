"""Feature catalogue, registry and the feature modules (one per category)."""
