"""Learning rate of a DCGAN (both Adam optimizers) on real MNIST digits, each trial scored by a Fréchet distance.
1e-2 is the rate that made the original runs unstable: expect it to score worst or end as `diverged`.

Launch:  python sweeps/gan_lr.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python sweeps/gan_lr.py --dataset=mnist --epochs=20
         python sweeps/gan_lr.py --dry-run         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="gan_lr",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "train.batch_size": 32,
          "train.epochs": 8},
    grid={"optim.lr": [2e-4, 1e-3, 1e-2]},
)

if __name__ == "__main__":
    main(SWEEP)
