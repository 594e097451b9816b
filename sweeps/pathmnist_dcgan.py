"""The 64x64 DCGAN pair of report 000 on PathMNIST's colon-pathology tiles (G 1024->512->256->128->3,
D 3->64->128->256->512), each trial scored by a Fréchet distance, the best-scoring model kept.

Default: our DCGAN family at that size (g_width 128, d_width 64, dropout 0.2), with and without the
discriminator's 1x1-conv sigmoid attention branch, the bce objective, Adam 2e-4 (0.5, 0.999), batch 128, 30
epochs scored every 5 on 1,000 fakes: all our choices (the report states no optimizer).
--preset=seed: report 000, second part: the printed G and D module by module, 1000 epochs of 704 iterations
(89,996 tiles: batch 128, our reading; we drop the last partial batch, so 703), FID every 100 epochs with 1,000
generated images, the best-by-FID model kept, G and D losses per iteration (here every 100th, our choice). Its
losses go negative, so its objective is a critic's (WGAN-type); the report names neither the objective nor the optimizer. Our choices: WGAN-GP with the paper's
defaults (Gulrajani et al.: gradient penalty 10, 5 critic steps per generator step, Adam lr 1e-4, betas 0 and
0.9), the final FID on 1,000 images too, train.max_loss 1e6 (the report's D loss reached 3.8e4 and training
went on; a loss above train.max_loss, or NaN/Inf, ends a trial as `diverged`).

Launch:  python -m library.data prepare pathmnist --size 64     (once, on a machine with internet)
         python sweeps/pathmnist_dcgan.py --gpus-per-worker=1    (a GPU per trial: CPU takes hours an epoch)
         python sweeps/pathmnist_dcgan.py --preset=seed --gpus-per-worker=1     (the report's run, FID)
         python sweeps/pathmnist_dcgan.py --dry-run [--preset=seed]    (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="pathmnist_dcgan",
    job="gan",
    mode="min",
    base={"data.name": "pathmnist", "data.image_size": 64, "model.g_width": 128, "model.d_width": 64,
          "model.dropout": 0.2, "train.batch_size": 128, "train.epochs": 30, "eval.every": 5},
    grid={"model.attention": ["none", "branch"]},
    presets={"seed": Preset(
        base={"data.name": "pathmnist", "data.image_size": 64, "model.noise_dim": 100, "model.dropout": 0.2,
              "model.d_steps": 5, "optim.lr": 1e-4, "optim.beta1": 0.0, "optim.beta2": 0.9,
              "train.batch_size": 128, "train.epochs": 1000, "train.max_loss": 1e6, "train.log_every_steps": 100,
              "eval.every": 100,
              "eval.extractor": "inception", "eval.num_samples": 1000, "eval.final_num_samples": 1000},
        grid={"model.arch": ["pathmnist64"], "model.loss": ["wgan-gp"]})},
)

if __name__ == "__main__":
    main(SWEEP)
