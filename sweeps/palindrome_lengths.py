"""Palindromes of growing length T: a hand-written LSTM cell vs nn.LSTM vs a vanilla RNN, accuracy per T.
The LSTMs should hold the first digit across the whole sequence; the RNN's memory fades as T grows.

Default: generated palindromes, T {5, 10, 20, 40} x the three cells, 10 epochs on CPU (our study: the lengths
and the comparison with nn.LSTM and the RNN are our choices).
--preset=seed: report 002, part I: the hand-written LSTM cell trained on palindromes of length 5 and 20. Our
choices where the report is silent: hidden 128, Adam lr 1e-3 with gradient clipping 5, batch 64, 10 epochs,
10,000 training and 2,000 test palindromes (this job's defaults).

Launch:  python sweeps/palindrome_lengths.py                 (generated data, CPU, a few minutes)
         python sweeps/palindrome_lengths.py --epochs=20
         python sweeps/palindrome_lengths.py --dry-run [--preset=seed]      (validate and list the trials)
"""
from library.driver import main
from library.sweep import Preset, Sweep

SWEEP = Sweep(
    name="palindrome_lengths",
    job="palindrome",
    mode="max",
    base={"train.epochs": 10, "train.batch_size": 64},
    grid={"model.cell": ["hand_lstm", "lstm", "rnn"], "data.length": [5, 10, 20, 40]},
    presets={"seed": Preset(base={"train.epochs": 10, "train.batch_size": 64},
                            grid={"model.cell": ["hand_lstm"], "data.length": [5, 20]})},
)

if __name__ == "__main__":
    main(SWEEP)
