"""Palindromes of growing length T: a hand-written LSTM cell vs nn.LSTM vs a vanilla RNN, accuracy per T.
The LSTMs should hold the first digit across the whole sequence; the RNN's memory fades as T grows.

Launch:  python sweeps/palindrome_lengths.py                 (generated data, CPU, a few minutes)
         python sweeps/palindrome_lengths.py --epochs=20
         python sweeps/palindrome_lengths.py --dry-run       (validate and list the trials)
"""
from library.driver import main
from library.sweep import Sweep

SWEEP = Sweep(
    name="palindrome_lengths",
    job="palindrome",
    mode="max",
    base={"train.epochs": 10, "train.batch_size": 64},
    grid={"model.cell": ["hand_lstm", "lstm", "rnn"], "data.length": [5, 10, 20, 40]},
)

if __name__ == "__main__":
    main(SWEEP)
