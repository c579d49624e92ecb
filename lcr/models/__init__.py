"""The models: LabelCoRank and its ablations (:mod:`lcr.models.labelcorank`), the baselines
(:mod:`lcr.models.baselines`), what they share (:mod:`lcr.models.base`), their hyper-parameters
(:mod:`lcr.models.hyperparams`), the encoder (:mod:`lcr.models.encoder`), the variant names
(:mod:`lcr.models.variants`, no torch) and the factory that builds and loads any of them
(:mod:`lcr.models.factory`).

Nothing is imported here, so that the torch-free modules stay cheap to import.
"""
