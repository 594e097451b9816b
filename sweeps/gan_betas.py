"""Adam betas for a DCGAN: beta1 x beta2, each trial scored by a Fréchet distance.

Default: real MNIST digits (embedded), beta1 {0.3, 0.5, 0.999} x beta2 {0.9, 0.999}, 8 epochs on CPU: our
quick version of the study (beta2 0.9, MNIST, 32 px, batch 32, no dropout, 8 epochs are our choices).
--preset=seed: report 001, part 1 extra credit, "Adam optimizer": beta1 {0.3, 0.5, 0.999} with beta2 0.999,
noise 100, lr 2e-4, spectral normalization, on face images, scored by FID. Our choices where the report is
silent: SN of the discriminator only, the GAN (bce) objective, 5 epochs (as its lr and noise-size studies),
32 px, batch 128, z ~ N(0, 1).

Launch:  python sweeps/gan_betas.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python -m library.data prepare faces && python sweeps/gan_betas.py --preset=seed --gpus-per-worker=1
         python sweeps/gan_betas.py --dry-run [--preset=seed]    (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="gan_betas",
    job="gan",
    mode="min",
    # 32 px gives the generator three up-convolutions; batch 32 doubles the steps per epoch on 5,000 digits.
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "train.batch_size": 32,
          "train.epochs": 8},
    grid={"optim.beta1": [0.3, 0.5, 0.999], "optim.beta2": [0.9, 0.999]},
    presets={"seed": Preset(
        base={"data.name": "faces", "data.image_size": 32, "eval.extractor": "inception", "model.noise_dim": 100,
              "model.spectral_norm": "d", "model.loss": "bce", "optim.lr": 2e-4, "train.batch_size": 128,
              "train.epochs": 5},
        grid={"optim.beta1": [0.3, 0.5, 0.999], "optim.beta2": [0.999]})},
)

if __name__ == "__main__":
    main(SWEEP)
