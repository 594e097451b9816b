"""The VAE of report 003, problem 1: a 784 -> 64 -> 16 MLP (squared error + KL), Adam lr 1e-3, batch 32, 3 epochs;
scored by its held-out loss, with a grid of samples drawn from z ~ N(0, I) and a latent interpolation grid.

Default: the same model on the 5,000 embedded MNIST digits (10% held out), CPU, under a minute: our quick
stand-in for FashionMNIST.
--preset=seed: the report's setup on FashionMNIST (60,000 training images). Our choices where the report is
silent: Adam's betas (PyTorch's defaults, 0.9 and 0.999), FashionMNIST's own test split for the held-out loss.

Launch:  python sweeps/vae_fashion.py                  (the 5,000 embedded digits, CPU)
         python -m library.data prepare fashion_mnist && python sweeps/vae_fashion.py --preset=seed
         python sweeps/vae_fashion.py --dry-run [--preset=seed]         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

REPORT = {"data.image_size": 28, "model.hidden": 64, "optim.lr": 1e-3, "optim.beta1": 0.9, "optim.beta2": 0.999,
          "train.batch_size": 32, "train.epochs": 3}

SWEEP = Sweep(
    name="vae_fashion",
    job="vae",
    mode="min",
    base={"data.name": "mnist5k", **REPORT},
    grid={"model.latent_dim": [16]},
    presets={"seed": Preset(base={"data.name": "fashion_mnist", **REPORT}, grid={"model.latent_dim": [16]})},
)

if __name__ == "__main__":
    main(SWEEP)
