"""Universal interatomic potentials: relaxation under symmetry, refinement of campaigns, labelling.

What it holds
    :mod:`~csp.potentials.relaxer` (loading CHGNet/SevenNet, ``relax``, the labelling command),
    :mod:`~csp.potentials.batched` (the batched relaxer: FIRE and a Frechet cell filter on a whole pool as
    tensors, symmetry kept by symmetrised forces and stress, continuous batching),
    :mod:`~csp.potentials.chgnet_graphs` (CHGNet's atom and bond graphs of a whole batch built as tensors on
    the batch's device, and CHGNet's model run on them),
    :mod:`~csp.potentials.refine` (a campaign's best distinct structures relaxed keeping their space group,
    rescored and ranked), :mod:`~csp.potentials.relax_server` (one process owns the device and the potential and
    relaxes the structures of many campaign processes in one batched pool), :mod:`~csp.potentials.result` (the one campaign result every face shows, and
    ``predict``, the front door that searches, refines and ranks), :mod:`~csp.potentials.augment` (polymorph plans: prototype decorations, the
    search's own symmetric random structures, strained copies; formation enthalpies from references
    computed with the same potential), :mod:`~csp.potentials.active` (the active loop: compositions chosen by
    seed and round, a campaign's top structures labelled, the resumable round and its model-vs-potential gap).

What it may import
    :mod:`csp.structures`, :mod:`csp.models` and :mod:`csp.search` (refinement rescores with the models and
    the fitness; labelling plans use the search's generator); never ``storage`` or ``flows``
    (``tests/csp/test_house.py`` holds the rule).
"""
