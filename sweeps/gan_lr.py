"""Learning rate of a DCGAN (both Adam optimizers), each trial scored by a Fréchet distance.

Default: real MNIST digits (embedded), lr {2e-4, 1e-3, 1e-2}, 8 epochs on CPU, no spectral norm: our quick
version of the study (MNIST, 32 px, batch 32, no dropout, 8 epochs are our choices). A trial whose loss
blows up ends as `diverged`, with the epoch and value.
--preset=seed: report 001, part 1 extra credit, "Learning rate": lr {2e-4, 1e-3, 1e-2} for 5 epochs, the GAN
with spectral normalization, on face images, scored by FID (the report found 1e-3 best after 5 epochs). Its
other settings are the report's defaults: noise 100, Adam beta1 0.5. Our choices where it is silent: SN of
the discriminator only, beta2 0.999, 32 px, batch 128, z ~ N(0, 1).

Launch:  python sweeps/gan_lr.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python -m library.data prepare faces && python sweeps/gan_lr.py --preset=seed --gpus-per-worker=1
         python sweeps/gan_lr.py --dry-run [--preset=seed]    (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="gan_lr",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "train.batch_size": 32,
          "train.epochs": 8},
    grid={"optim.lr": [2e-4, 1e-3, 1e-2]},
    presets={"seed": Preset(
        base={"data.name": "faces", "data.image_size": 32, "eval.extractor": "inception", "model.noise_dim": 100,
              "model.spectral_norm": "d", "model.loss": "bce", "optim.beta1": 0.5, "optim.beta2": 0.999,
              "train.batch_size": 128, "train.epochs": 5},
        grid={"optim.lr": [2e-4, 1e-3, 1e-2]})},
)

if __name__ == "__main__":
    main(SWEEP)
