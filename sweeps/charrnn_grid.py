"""Character-level language model: cell x layers x hidden size x learning rate, scored by the test loss;
every trial saves 1000-character samples (sample.txt, samples/epoch_*.txt in its run dir).

Default: lee_background.cor (English news shipped with gensim), rnn/lstm/gru x 1-3 layers x hidden {100, 300,
600} x lr {0.01, 0.005, 0.001}, 10 epochs on CPU: our quick version (the text, the hidden sizes, 10 epochs).
--preset=seed: report 001, part 2 (generation): rnn/lstm/gru x layers 1, 2, 3 x hidden 100, 150, 300, 600 x lr
0.01, 0.005, 0.001 (108 trials; the report chose lstm/1/150/0.01), a 1000-character sample each.
--preset=seed_dickens: its extra credit: gru, 1 layer, hidden 200, lr 0.01 on Dickens.
Our choices where the report is silent: Shakespeare is Karpathy's tiny-shakespeare (the report names no file);
Dickens is A Tale of Two Cities alone (the report joined 10 novels it does not list); 20 epochs, the sequence
length, batch, embedding and sampling temperature (this job's defaults).

Launch:  python sweeps/charrnn_grid.py                 (lee_background.cor shipped with gensim; 81 trials)
         python -m library.data prepare shakespeare && python sweeps/charrnn_grid.py --preset=seed
         python -m library.data prepare dickens && python sweeps/charrnn_grid.py --preset=seed_dickens
         python sweeps/charrnn_grid.py --dry-run [--preset=seed]      (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="charrnn_grid",
    job="charrnn",
    mode="min",
    base={"data.name": "lee", "train.epochs": 10, "eval.temperature": 0.8},
    grid={"model.cell": ["rnn", "lstm", "gru"], "model.layers": [1, 2, 3], "model.hidden": [100, 300, 600],
          "optim.lr": [0.01, 0.005, 0.001]},
    presets={
        "seed": Preset(base={"data.name": "shakespeare", "train.epochs": 20, "eval.sample_chars": 1000},
                       grid={"model.cell": ["rnn", "lstm", "gru"], "model.layers": [1, 2, 3],
                             "model.hidden": [100, 150, 300, 600], "optim.lr": [0.01, 0.005, 0.001]}),
        "seed_dickens": Preset(base={"data.name": "dickens", "train.epochs": 20, "eval.sample_chars": 1000},
                               grid={"model.cell": ["gru"], "model.layers": [1], "model.hidden": [200],
                                     "optim.lr": [0.01]}),
    },
)

if __name__ == "__main__":
    main(SWEEP)
