"""Files shipped with the app: the default weights (default_weights.pt)."""
