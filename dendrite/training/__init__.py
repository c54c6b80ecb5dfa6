"""The training loop: Trainer (compile/fit/evaluate/predict), callbacks, progress bar."""
