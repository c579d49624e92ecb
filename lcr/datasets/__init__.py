"""Dataset readers, the dataset registry and the normalised store."""
