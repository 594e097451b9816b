"""Random search over a DCGAN's learning rate, Adam betas and noise size, with ASHA stopping the trials that fall
behind (each trial is scored by a Fréchet distance every epoch).

Default: 16 draws on the 5,000 embedded MNIST digits, 9 epochs on CPU; the space is our choice.
--preset=seed: report 004 says only that it tuned hyperparameters by random search (and tried to score by FID);
it states no space, data or budget. So the preset draws the same space, scores by FID, and everything else is
our choice: MNIST's 60,000 digits at 32 px, batch 64, 16 draws, 9 epochs with ASHA's rungs at 1, 3 and 9.

Launch:  python sweeps/gan_random_search.py                 (16 draws on the 5,000 embedded digits, CPU)
         python sweeps/gan_random_search.py --backend=ray-slurm --site=site.toml   (ASHA needs one driver:
                                                              local or ray-slurm, not Slurm arrays)
         python sweeps/gan_random_search.py --dry-run [--preset=seed]      (validate and list the drawn trials)
"""
from library.search import ASHA, Choice, LogUniform, Uniform
from library.driver import main
from library.sweep import Preset, Sweep

SPACE = {"optim.lr": LogUniform(5e-5, 5e-3), "optim.beta1": Uniform(0.0, 0.9),
         "optim.beta2": Choice([0.9, 0.99, 0.999]), "model.noise_dim": Choice([10, 50, 100, 200])}

SWEEP = Sweep(
    name="gan_random_search",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "train.batch_size": 32,
          "train.epochs": 9},
    search=SPACE,
    samples=16,
    early_stop=ASHA(grace_epochs=1, reduction_factor=3),  # rungs at epochs 1, 3, 9
    presets={"seed": Preset(
        base={"data.name": "mnist", "data.image_size": 32, "eval.extractor": "inception", "model.dropout": 0.0,
              "train.batch_size": 64, "train.epochs": 9},
        search=SPACE, samples=16)},
)

if __name__ == "__main__":
    main(SWEEP)
