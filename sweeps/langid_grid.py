"""Language of text snippets, read character by character: cell x layers x hidden size x learning rate.
Reported before: lstm, 2 layers, hidden 600, lr 1e-3 reached 0.903 test accuracy.

Launch:  python sweeps/langid_grid.py                 (English, Bulgarian, Russian text shipped with gensim)
         python -m library.data prepare names && python sweeps/langid_grid.py --dataset=names
         python sweeps/langid_grid.py --dry-run       (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="langid_grid",
    job="langid",
    mode="max",
    base={"data.name": "gensim_langs", "train.batch_size": 32, "train.epochs": 10},
    grid={"model.cell": ["gru", "lstm"], "model.layers": [1, 2], "model.hidden": [100, 600],
          "optim.lr": [0.01, 0.001]},
)

if __name__ == "__main__":
    main(SWEEP)
