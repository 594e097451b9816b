"""Distribution of a DCGAN's input noise, z ~ N(0, 1) vs U(-1, 1): the per-epoch loss curves show how fast each
converges, the Fréchet distance how well.

Default: the 5,000 embedded MNIST digits, 32 px, batch 32, 8 epochs on CPU: our quick version of the study.
--preset=seed: report 004, "Key Points": "Using different distributions for seed gives different convergence
rates", read next to its "Epochs vs Loss" plot. It names neither the distributions, the model nor the data, so
everything else is our choice: the two distributions this library draws, the DCGAN, MNIST's 60,000 digits at
32 px, batch 64, 20 epochs, scored by FID (which the report tried to compute).

Launch:  python sweeps/gan_noise_dist.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python sweeps/gan_noise_dist.py --repeats=3      (three seeds each: is the difference more than noise?)
         python sweeps/gan_noise_dist.py --dry-run [--preset=seed]         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="gan_noise_dist",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "train.batch_size": 32,
          "train.epochs": 8},
    grid={"model.noise": ["normal", "uniform"]},
    presets={"seed": Preset(
        base={"data.name": "mnist", "data.image_size": 32, "eval.extractor": "inception", "model.dropout": 0.0,
              "train.batch_size": 64, "train.epochs": 20},
        grid={"model.noise": ["normal", "uniform"]})},
)

if __name__ == "__main__":
    main(SWEEP)
