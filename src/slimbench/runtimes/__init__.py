"""Runners: a built artifact opened for prediction (`runners`), the NumPy-only BERT (`numpy_bert`),
seed 001's predictor over a built variant (`predictor`), and the two child processes the
measuring session starts: the timing worker (`worker`) and the fresh-process probe (`probes`).

This package's __init__ imports nothing: a measured child process loads only what it uses."""
