"""Deep-learning hyperparameter studies on Slurm GPU clusters: Ray Train harness, Ray Tune / submitit launch."""
