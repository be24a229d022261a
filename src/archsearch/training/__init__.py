"""Training: ``loop`` is the one training and evaluation loop every trial, supernet and final training uses
(:class:`~archsearch.training.loop.Trainer`: budgets checked per batch, checkpoints, channels_last on the CPU);
``final`` is the final-evaluation recipe that trains one architecture from scratch (cosine SGD, cutout,
auxiliary tower, drop path). This layer uses the space core, the datasets and the hardware cost model; it knows
nothing of strategies, evaluators or run stores.
"""
