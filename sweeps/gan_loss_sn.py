"""GAN vs LSGAN, each with and without spectral normalization of the discriminator (which then drops its
batch norm); each trial scored by a Fréchet distance.

Default: real MNIST digits (embedded), 8 epochs on CPU: our quick version of the study (MNIST, 32 px, batch 32,
no dropout, 8 epochs are our choices).
--preset=seed: report 001, part 1: GAN and LSGAN with noise 100, lr 2e-4, Adam beta1 0.5, with spectral
normalization, and the GAN with and without it, on face images, scored by FID. The report ran the GAN for 18
epochs and the LSGAN for 23; here every trial runs 23 and keeps each epoch's grid and score (epoch 18's is the
18-epoch run's: nothing in training depends on the total). The grid adds LSGAN without SN, which the report did
not run. Our choices where it is silent: SN of the discriminator only, beta2 0.999, 32 px, batch 128,
z ~ N(0, 1).

Launch:  python sweeps/gan_loss_sn.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python sweeps/gan_loss_sn.py --model.loss=hinge    (the hinge loss instead, SN on and off)
         python -m library.data prepare faces && python sweeps/gan_loss_sn.py --preset=seed --gpus-per-worker=1
         python sweeps/gan_loss_sn.py --dry-run [--preset=seed]    (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="gan_loss_sn",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "train.batch_size": 32,
          "train.epochs": 8},
    grid={"model.loss": ["bce", "lsgan"], "model.spectral_norm": ["off", "d"]},
    presets={"seed": Preset(
        base={"data.name": "faces", "data.image_size": 32, "eval.extractor": "inception", "model.noise_dim": 100,
              "optim.lr": 2e-4, "optim.beta1": 0.5, "optim.beta2": 0.999, "train.batch_size": 128,
              "train.epochs": 23},
        grid={"model.loss": ["bce", "lsgan"], "model.spectral_norm": ["d", "off"]})},
)

if __name__ == "__main__":
    main(SWEEP)
