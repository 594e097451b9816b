"""Language of text snippets, read character by character: cell x layers x hidden size x learning rate.

Default: English, Bulgarian and Russian text shipped with gensim, gru/lstm x 1-2 layers x hidden {100, 600} x
lr {0.01, 0.001}, 10 epochs on CPU: our quick version of the study (the data and the smaller grid).
--preset=seed: report 001, part 2 (classification): rnn/lstm/gru x layers 1, 2, 3 x hidden 100, 300, 600, 1000 x
lr 0.01, 0.005, 0.001 (108 trials), with a confusion matrix each; the report's best, lstm/2/600/0.001, reached
0.903 test accuracy on its own data, and plotted its training loss per iteration (here every 100th step's, our
choice; the test loss is per epoch). Our choices where the report is silent: the data (its course's Kaggle set,
with Xhosa, Romanian and Maori among the languages, is not public; we use PyTorch's surnames in 18 languages),
20 epochs, batch 32, embedding size and snippet length (this job's defaults).

Launch:  python sweeps/langid_grid.py                 (English, Bulgarian, Russian text shipped with gensim)
         python -m library.data prepare names && python sweeps/langid_grid.py --preset=seed
         python sweeps/langid_grid.py --dry-run [--preset=seed]      (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="langid_grid",
    job="langid",
    mode="max",
    base={"data.name": "gensim_langs", "train.batch_size": 32, "train.epochs": 10},
    grid={"model.cell": ["gru", "lstm"], "model.layers": [1, 2], "model.hidden": [100, 600],
          "optim.lr": [0.01, 0.001]},
    presets={"seed": Preset(
        base={"data.name": "names", "train.batch_size": 32, "train.epochs": 20, "train.log_every_steps": 100},
        grid={"model.cell": ["rnn", "lstm", "gru"], "model.layers": [1, 2, 3], "model.hidden": [100, 300, 600, 1000],
              "optim.lr": [0.01, 0.005, 0.001]})},
)

if __name__ == "__main__":
    main(SWEEP)
