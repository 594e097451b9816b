"""The MNIST DCGAN of report 003, problem 2: z of size 200 ~ U(-1, 1), Adam 2e-4 (0.5, 0.999), progress shown on
16 fixed noise vectors, trained for 10 and for 50 epochs; each trial scored by a Fréchet distance.

Default: the same model on the 5,000 embedded digits, 2 and 8 epochs, batch 32, on CPU: our quick version.
--preset=seed: the report's setup on MNIST's 60,000 digits at 28 px: z = 200 ~ U(-1, 1), Adam lr 2e-4, betas
(0.5, 0.999), 16 fixed vectors (the sample grid), 10 and 50 epochs (one trial each: "first for 10 epochs and
then for 50"). Our choices where the report is silent: the DCGAN widths of this library, no dropout and batch
128 (the DCGAN paper's, whose architecture the report says it followed), the bce objective (its D outputs a
probability).

Launch:  python sweeps/mnist_dcgan.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python -m library.data prepare mnist && python sweeps/mnist_dcgan.py --preset=seed
         python sweeps/mnist_dcgan.py --dry-run [--preset=seed]         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

REPORT = {"data.image_size": 28, "model.noise_dim": 200, "model.noise": "uniform", "model.dropout": 0.0,
          "model.loss": "bce", "optim.lr": 2e-4, "optim.beta1": 0.5, "optim.beta2": 0.999}

SWEEP = Sweep(
    name="mnist_dcgan",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", **REPORT, "train.batch_size": 32},
    grid={"train.epochs": [2, 8]},
    presets={"seed": Preset(base={"data.name": "mnist", **REPORT, "train.batch_size": 128},
                            grid={"train.epochs": [10, 50]})},
)

if __name__ == "__main__":
    main(SWEEP)
