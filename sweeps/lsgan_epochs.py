"""Training length of an LSGAN with spectral normalization: one long run, its sample grid and Fréchet distance
kept every epoch, so the table and the report's curves show where quality rises, crashes and recovers.

Default: real MNIST digits (embedded), 3 seeds of a 12-epoch run on CPU: our quick version of the study (MNIST,
32 px, batch 32, no dropout, 12 epochs and the seeds are our choices).
--preset=seed: report 001, part 1 extra credit, "Number of Epochs": LSGAN with spectral normalization, noise 100,
lr 2e-4, Adam beta1 0.5, looked at after 5, 10, 15, 20 and 23 epochs (one 23-epoch run: every epoch's grid is in
samples/epoch_NNNN.png), on face images, scored by FID. The report saw quality crash near epoch 20 and recover
by 23, showing grids by iteration (in epoch 20, at iterations 19,400 and 20,200); here a grid every 200
iterations and the losses of every 100th (our choice of both). Our choices where it is silent: SN of the
discriminator only, beta2 0.999, 32 px, batch 128, z ~ N(0, 1).

Launch:  python sweeps/lsgan_epochs.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python -m library.data prepare faces && python sweeps/lsgan_epochs.py --preset=seed --gpus-per-worker=1
         python sweeps/lsgan_epochs.py --dry-run [--preset=seed]    (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="lsgan_epochs",
    job="gan",
    mode="min",
    base={"data.name": "mnist5k", "data.image_size": 32, "model.loss": "lsgan", "model.spectral_norm": "d",
          "model.dropout": 0.0, "train.batch_size": 32, "train.epochs": 12},
    grid={"train.seed": [0, 1, 2]},
    presets={"seed": Preset(
        base={"data.name": "faces", "data.image_size": 32, "eval.extractor": "inception", "model.noise_dim": 100,
              "model.spectral_norm": "d", "optim.lr": 2e-4, "optim.beta1": 0.5, "optim.beta2": 0.999,
              "train.batch_size": 128, "train.log_every_steps": 100, "eval.grid_every_steps": 200},
        grid={"model.loss": ["lsgan"], "train.epochs": [23]})},
)

if __name__ == "__main__":
    main(SWEEP)
