"""VAE latent size: 784 -> 64 -> {2, 8, 16, 32}, each trial scored by its held-out loss.

Default: the 5,000 embedded MNIST digits (10% held out), 10 epochs on CPU: our quick version of the study.
--preset=seed: report 003, problem 1 (its VAE: FashionMNIST, 784 -> 64 -> 16, squared error + KL, Adam lr 1e-3,
batch 32, 3 epochs) with the latent size as the axis: 16 is the report's, 2, 8 and 32 are ours (the report
tried no other size). sweeps/vae_fashion.py is the report's one model alone. Our choices where the report is
silent: Adam's betas (PyTorch's defaults, 0.9 and 0.999), FashionMNIST's own test split for the held-out loss.

Launch:  python sweeps/vae_latent.py                  (the 5,000 embedded digits, 10% held out, CPU, minutes)
         python -m library.data prepare fashion_mnist && python sweeps/vae_latent.py --preset=seed
         python sweeps/vae_latent.py --dry-run [--preset=seed]         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="vae_latent",
    job="vae",
    mode="min",
    base={"data.name": "mnist5k", "model.hidden": 64, "optim.lr": 1e-3, "train.batch_size": 32, "train.epochs": 10},
    grid={"model.latent_dim": [2, 8, 16, 32]},
    presets={"seed": Preset(
        base={"data.name": "fashion_mnist", "data.image_size": 28, "model.hidden": 64, "optim.lr": 1e-3,
              "optim.beta1": 0.9, "optim.beta2": 0.999, "train.batch_size": 32, "train.epochs": 3},
        grid={"model.latent_dim": [2, 8, 16, 32]})},
)

if __name__ == "__main__":
    main(SWEEP)
