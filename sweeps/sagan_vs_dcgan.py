"""SAGAN vs DCGAN: self-attention (in G and D) x spectral normalization (of G and D), so the table separates
what each adds; all four use the hinge loss. The fourth trial has SAGAN's parts (Zhang et al., 2019:
self-attention, SN in G and D, hinge loss) but not its training: SAGAN uses separate learning rates (G 1e-4,
D 4e-4) and Adam betas (0, 0.9), where every trial here shares one Adam (lr 2e-4, betas 0.5 and 0.999).

Default: the 5,000 embedded MNIST digits, 32 px, batch 32, 8 epochs on CPU: our quick version of the study.
--preset=seed: report 004 compares SAGAN with DCGAN, describes self-attention and spectral normalization, and
tried (without success) to score them by FID; it states no dataset, sizes or training settings. So the
preset scores the same four trials by FID, and everything else is our choice: MNIST's 60,000 digits at 32 px,
batch 64, 20 epochs, the hinge loss and the shared Adam above.

Launch:  python sweeps/sagan_vs_dcgan.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python sweeps/sagan_vs_dcgan.py --dataset=pathmnist --data.image_size=64 --epochs=20
         python -m library.data prepare mnist && python sweeps/sagan_vs_dcgan.py --preset=seed --gpus-per-worker=1
         python sweeps/sagan_vs_dcgan.py --dry-run [--preset=seed]         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="sagan_vs_dcgan",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "model.loss": "hinge",
          "train.batch_size": 32, "train.epochs": 8},
    grid={"model.attention": ["none", "self"], "model.spectral_norm": ["off", "both"]},
    presets={"seed": Preset(
        base={"data.name": "mnist", "data.image_size": 32, "eval.extractor": "inception", "model.dropout": 0.0,
              "model.loss": "hinge", "train.batch_size": 64, "train.epochs": 20},
        grid={"model.attention": ["none", "self"], "model.spectral_norm": ["off", "both"]})},
)

if __name__ == "__main__":
    main(SWEEP)
