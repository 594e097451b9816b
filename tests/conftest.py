import os

# Tests never talk to W&B's servers, even on a machine where someone is logged in.
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
