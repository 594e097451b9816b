"""Conditional GAN on real MNIST digits with 1, 2 or 5 discriminator steps per generator step; sample grids have
one row per digit.

Default: the conditional DCGAN (label embedding into G, one-hot label planes into D), the 5,000 embedded digits,
32 px, batch 32, 8 epochs on CPU: our quick, convolutional version of the study.
--preset=seed: report 003, problem 3: G and D of linear layers, conditioned on the label, D trained n times per
G step, one row of samples per label. The report does not give n: {1, 2, 5} is our axis. Our choices where it
is silent: MNIST's 60,000 digits at 28 px, this library's MLP GAN widths, the bce objective, z ~ N(0, 1) of size
100, Adam 2e-4 (0.5, 0.999) (its problem 2's optimizer), batch 64, 20 epochs, no dropout.

Launch:  python sweeps/cgan.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python -m library.data prepare mnist && python sweeps/cgan.py --preset=seed
         python sweeps/cgan.py --dry-run [--preset=seed]         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="cgan",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.conditional": True, "model.dropout": 0.0,
          "train.batch_size": 32, "train.epochs": 8},
    grid={"model.d_steps": [1, 2, 5]},
    presets={"seed": Preset(
        base={"data.name": "mnist", "data.image_size": 28, "model.arch": "mlp", "model.conditional": True,
              "model.dropout": 0.0, "model.loss": "bce", "optim.lr": 2e-4, "optim.beta1": 0.5, "optim.beta2": 0.999,
              "train.batch_size": 64, "train.epochs": 20},
        grid={"model.d_steps": [1, 2, 5]})},
)

if __name__ == "__main__":
    main(SWEEP)
