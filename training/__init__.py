"""Training and evaluation for SANCHARi road segmentation (the V4 recipe).

Depends on the engine (``sanchari_processes.inference``) for the model factory and the checkpoint
format, never the reverse: what training writes, ``sanchari predict --weights`` runs directly.
Commands: ``sanchari preprocess | train | train-lovasz | pseudo-label | optimize-threshold |
evaluate | release``, declared as ``sanchari.commands`` entry points in setup.cfg; ``python -m
training.X`` (``X`` the module, e.g. ``training.export`` for ``release``) runs the same command.
"""
