"""Adam betas for a DCGAN on real MNIST digits: beta1 x beta2, each trial scored by a Fréchet distance.

Launch:  python sweeps/gan_betas.py                  (the 5,000 embedded digits, CPU, a few minutes)
         python sweeps/gan_betas.py --dataset=mnist --epochs=20
         python sweeps/gan_betas.py --dry-run         (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="gan_betas",
    job="gan",
    mode="min",
    # 32 px gives the generator three up-convolutions; batch 32 doubles the steps per epoch on 5,000 digits.
    base={"data.name": "mnist5k", "data.image_size": 32, "model.dropout": 0.0, "train.batch_size": 32,
          "train.epochs": 8},
    grid={"optim.beta1": [0.3, 0.5, 0.999], "optim.beta2": [0.9, 0.999]},
)

if __name__ == "__main__":
    main(SWEEP)
