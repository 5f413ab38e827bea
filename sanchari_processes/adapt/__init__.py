"""Adapting a model to the user's region from the roads they already have.

``labels`` burns the roads on the model's grid, ``folds`` deals the labelled area into spatial
folds, ``thresholds`` re-chooses the threshold, ``finetune`` fine-tunes on a CPU (torch),
``run`` ties them together with the guard, and ``card`` writes what was measured.
"""
