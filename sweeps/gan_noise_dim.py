"""Noise size of the MNIST DCGAN (z ~ U(-1, 1), as in the original study, where 300 failed to train), each
trial scored by a Fréchet distance.

Launch:  python sweeps/gan_noise_dim.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python sweeps/gan_noise_dim.py --dataset=mnist --epochs=20
         python sweeps/gan_noise_dim.py --dry-run         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="gan_noise_dim",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.noise": "uniform", "model.dropout": 0.0,
          "train.batch_size": 32, "train.epochs": 8},
    grid={"model.noise_dim": [10, 50, 100, 200, 300]},
)

if __name__ == "__main__":
    main(SWEEP)
