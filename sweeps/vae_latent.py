"""VAE latent size on real digits: 784 -> 64 -> {2, 8, 16, 32}, each trial scored by its held-out loss.

Launch:  python sweeps/vae_latent.py                  (the 5,000 embedded digits, 10% held out, CPU, minutes)
         python -m library.data prepare fashion_mnist && python sweeps/vae_latent.py --dataset=fashion_mnist
         python sweeps/vae_latent.py --dry-run         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="vae_latent",
    job="vae",
    mode="min",
    base={"data.name": "mnist5k", "model.hidden": 64, "optim.lr": 1e-3, "train.batch_size": 32, "train.epochs": 10},
    grid={"model.latent_dim": [2, 8, 16, 32]},
)

if __name__ == "__main__":
    main(SWEEP)
