"""Training and evaluation for SANCHARi road segmentation (the V4 recipe).

Depends on the engine (``sanchari_processes.inference``) for the model factory and the checkpoint
format, never the reverse: what training writes, ``sanchari predict --weights`` runs directly.
Commands: ``python -m training.preprocess | train | train_lovasz | optimize_threshold | evaluate``.
"""
