"""Sentiment classifier by recurrent layer: rnn / lstm / gru / bilstm over Word2Vec embeddings (fine-tuned).

Launch:  python sweeps/sentiment_rnn_types.py                 (200 review sentences shipped with gensim, CPU, a minute)
         python -m library.data prepare imdb && python sweeps/sentiment_rnn_types.py --dataset=imdb --epochs=10
         python sweeps/sentiment_rnn_types.py --dry-run       (validate and list the trials)
Reported on IMDB before: BiLSTM 71.5%, LSTM 69.5%, GRU 54.1%, RNN 50.5% test accuracy.
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="sentiment_rnn_types",
    job="sentiment",
    mode="max",
    # Word2Vec is trained once on the training split by the prepare step and shared by all four trials.
    base={"data.name": "pang_lee", "model.hidden": 64, "model.dropout": 0.5, "train.batch_size": 16,
          "train.epochs": 10},
    grid={"model.cell": ["rnn", "lstm", "gru", "bilstm"]},
)

if __name__ == "__main__":
    main(SWEEP)
