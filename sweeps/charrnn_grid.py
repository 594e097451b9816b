"""Character-level language model: cell x layers x hidden size x learning rate, scored by the test loss;
every trial saves 1000-character samples (sample.txt, samples/epoch_*.txt in its run dir).

Launch:  python sweeps/charrnn_grid.py                 (lee_background.cor shipped with gensim; 81 trials)
         python -m library.data prepare shakespeare && python sweeps/charrnn_grid.py --dataset=shakespeare
         python sweeps/charrnn_grid.py --dry-run       (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="charrnn_grid",
    job="charrnn",
    mode="min",
    base={"data.name": "lee", "train.epochs": 10, "eval.temperature": 0.8},
    grid={"model.cell": ["rnn", "lstm", "gru"], "model.layers": [1, 2, 3], "model.hidden": [100, 300, 600],
          "optim.lr": [0.01, 0.005, 0.001]},
)

if __name__ == "__main__":
    main(SWEEP)
