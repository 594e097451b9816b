"""The original PathMNIST study: the 64x64 DCGAN pair (G 1024->512->256->128->3, D 3->64->128->256->512) on
89,996 colon-pathology tiles, with and without the discriminator's 1x1-conv sigmoid attention branch; Adam 2e-4,
betas (0.5, 0.999); scored every 5 epochs on 1,000 fakes, the best-scoring model kept. The original run's D loss
reached 3.8e4: a loss above train.max_loss (or NaN/Inf) ends a trial as `diverged`, with the epoch and value.

Launch:  python -m library.data prepare pathmnist --size 64     (once, on a machine with internet)
         python sweeps/pathmnist_dcgan.py --gpus-per-worker=1    (a GPU per trial: CPU takes hours an epoch)
         python sweeps/pathmnist_dcgan.py --dry-run              (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="pathmnist_dcgan",
    job="gan",
    mode="min",
    base={"data.name": "pathmnist", "data.image_size": 64, "model.g_width": 128, "model.d_width": 64,
          "model.dropout": 0.2, "train.batch_size": 128, "train.epochs": 30, "eval.every": 5},
    grid={"model.attention": ["none", "branch"]},
)

if __name__ == "__main__":
    main(SWEEP)
