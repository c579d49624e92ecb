"""Training: the loop that trains and evaluates every neural variant (:mod:`lcr.train.loop`):
batches, optimiser, schedule, checkpoints and resume, dev evaluation, the best model folder.
"""
