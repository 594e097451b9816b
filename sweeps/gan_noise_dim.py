"""Noise size of a DCGAN, each trial scored by a Fréchet distance.

Default: real MNIST digits (embedded), noise {10, 50, 100, 200, 300} with z ~ U(-1, 1), 8 epochs on CPU: our
quick version of the study (the sizes, the uniform noise, MNIST, 32 px, batch 32, no dropout and 8 epochs
are our choices).
--preset=seed: report 001, part 1 extra credit, "Noise size": the GAN with spectral normalization after 5
epochs at a fixed lr 1e-3, on face images, scored by FID; noise 100 (the report's default) vs 300 (the size it
says failed to converge). The report's images of other sizes are lost and it names no others. Our choices
where it is silent: SN of the discriminator only, Adam beta1 0.5 (the report's default) with beta2 0.999,
32 px, batch 128, z ~ N(0, 1).

Launch:  python sweeps/gan_noise_dim.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python -m library.data prepare faces && python sweeps/gan_noise_dim.py --preset=seed --gpus-per-worker=1
         python sweeps/gan_noise_dim.py --dry-run [--preset=seed]    (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="gan_noise_dim",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.noise": "uniform", "model.dropout": 0.0,
          "train.batch_size": 32, "train.epochs": 8},
    grid={"model.noise_dim": [10, 50, 100, 200, 300]},
    presets={"seed": Preset(
        base={"data.name": "faces", "data.image_size": 32, "eval.extractor": "inception", "model.spectral_norm": "d",
              "model.loss": "bce", "optim.lr": 1e-3, "optim.beta1": 0.5, "optim.beta2": 0.999,
              "train.batch_size": 128, "train.epochs": 5},
        grid={"model.noise_dim": [100, 300]})},
)

if __name__ == "__main__":
    main(SWEEP)
