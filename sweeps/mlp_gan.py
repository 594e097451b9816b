"""The fully connected MNIST GAN of report 002, part II: trained on batches of 64, its sample grid saved every 500
batches, then a walk through the latent space (interpolation.png); each trial scored by a Fréchet distance.

Default: the same model on the 5,000 embedded digits, a grid every 50 batches, 8 epochs on CPU: our quick version.
--preset=seed: the report's setup on MNIST's 60,000 digits at 28 px: the MLP generator and discriminator "of
the template", batches of 64, a grid every 500 batches, linear interpolation between noise vectors. The report
shows batches 59,500-60,500 as "the halfway of training": we read that as about 120,000 batches, 128 epochs of
937. Our choices where the report is silent: the layer widths of this library's MLP GAN, the bce objective,
z ~ N(0, 1) of size 100, Adam 2e-4 (0.5, 0.999), no dropout, a grid of 16 fixed noise vectors.

Launch:  python sweeps/mlp_gan.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python -m library.data prepare mnist && python sweeps/mlp_gan.py --preset=seed
         python sweeps/mlp_gan.py --dry-run [--preset=seed]         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

MODEL = {"data.image_size": 28, "model.arch": "mlp", "model.dropout": 0.0, "model.loss": "bce",
         "model.noise_dim": 100, "optim.lr": 2e-4, "optim.beta1": 0.5, "optim.beta2": 0.999, "train.batch_size": 64}

SWEEP = Sweep(
    name="mlp_gan",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", **MODEL, "eval.grid_every_steps": 50},
    grid={"train.epochs": [8]},
    presets={"seed": Preset(base={"data.name": "mnist", **MODEL, "eval.grid_every_steps": 500},
                            grid={"train.epochs": [128]})},
)

if __name__ == "__main__":
    main(SWEEP)
