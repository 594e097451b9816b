"""Conditional DCGAN on real MNIST digits (label embedding into G, one-hot label planes into D), with 1, 2 or 5
discriminator steps per generator step; sample grids have one row per digit.

Launch:  python sweeps/cgan.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python sweeps/cgan.py --dataset=fashion_mnist --epochs=20
         python sweeps/cgan.py --dry-run         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="cgan",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.conditional": True, "model.dropout": 0.0,
          "train.batch_size": 32, "train.epochs": 8},
    grid={"model.d_steps": [1, 2, 5]},
)

if __name__ == "__main__":
    main(SWEEP)
