"""lcr: a reproducible implementation of LabelCoRank (Yan, Liu, Zhang)."""

__version__ = "0.1.0"
