"""SAGAN vs DCGAN: self-attention (in G and D) x spectral normalization (of G and D), so the table separates
what each adds; the fourth trial is SAGAN (Zhang et al., 2019). All use SAGAN's hinge loss.

Launch:  python sweeps/sagan_vs_dcgan.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python sweeps/sagan_vs_dcgan.py --dataset=pathmnist --data.image_size=64 --epochs=20
         python sweeps/sagan_vs_dcgan.py --dry-run         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="sagan_vs_dcgan",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "model.loss": "hinge",
          "train.batch_size": 32, "train.epochs": 8},
    grid={"model.attention": ["none", "self"], "model.spectral_norm": ["off", "both"]},
)

if __name__ == "__main__":
    main(SWEEP)
