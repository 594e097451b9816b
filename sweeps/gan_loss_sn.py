"""GAN vs LSGAN, each with and without spectral normalization of the discriminator (which then drops its
batch norm), on real MNIST digits; each trial scored by a Fréchet distance.

Launch:  python sweeps/gan_loss_sn.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python sweeps/gan_loss_sn.py --model.loss=hinge    (the hinge loss instead, SN on and off)
         python sweeps/gan_loss_sn.py --dry-run         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="gan_loss_sn",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "train.batch_size": 32,
          "train.epochs": 8},
    grid={"model.loss": ["bce", "lsgan"], "model.spectral_norm": ["off", "d"]},
)

if __name__ == "__main__":
    main(SWEEP)
