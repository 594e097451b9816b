"""Recurrent models of the sequence studies: a classifier over packed token sequences (RNN / LSTM / GRU /
BiLSTM), a character language model, and an LSTM cell written out from the equations (Hochreiter &
Schmidhuber 1997, with the forget gate of Gers et al. 2000) for the palindrome study. Models do no I/O."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from library.config import require

CELLS = ("rnn", "lstm", "gru", "bilstm")


@dataclass(kw_only=True)
class RNNConfig:
    cell: str = "lstm"
    """Recurrent layer: rnn (tanh), lstm, gru or bilstm (an LSTM read both ways)."""
    hidden: int = 128
    """Hidden units per layer and direction."""
    layers: int = 1
    """Stacked recurrent layers."""
    dropout: float = 0.0
    """Dropout between stacked layers and before the output layer."""

    def check(self, prefix: str) -> None:
        require(self.cell in CELLS, f"{prefix}cell", self.cell, " / ".join(CELLS))
        require(1 <= self.hidden <= 8192, f"{prefix}hidden", self.hidden, "an integer in [1, 8192]")
        require(1 <= self.layers <= 8, f"{prefix}layers", self.layers, "an integer in [1, 8]")
        require(0 <= self.dropout < 1, f"{prefix}dropout", self.dropout, "a float in [0, 1)")


def recurrent(cfg: RNNConfig, input_size: int) -> nn.RNNBase:
    kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU, "bilstm": nn.LSTM}[cfg.cell]
    return kind(input_size, cfg.hidden, cfg.layers, batch_first=True, bidirectional=cfg.cell == "bilstm",
                dropout=cfg.dropout if cfg.layers > 1 else 0.0)


class SequenceClassifier(nn.Module):
    """Token ids -> embedding -> recurrent layers over the packed sequence -> last hidden state -> class logits."""

    def __init__(self, vocab_size: int, embed_dim: int, num_classes: int, cfg: RNNConfig,
                 vectors: torch.Tensor | None = None, freeze: bool = False):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        if vectors is not None:  # pretrained (Word2Vec) rows; frozen or fine-tuned
            self.embed.weight.data.copy_(vectors)
        self.embed.weight.requires_grad_(not freeze)
        self.rnn = recurrent(cfg, embed_dim)
        directions = 2 if cfg.cell == "bilstm" else 1
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(directions * cfg.hidden, num_classes))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # ids: B x L (0-padded), lengths: B
        packed = pack_padded_sequence(self.embed(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)  # padding never enters the recurrence
        h = h[0] if isinstance(h, tuple) else h  # LSTM: (h_n, c_n); h_n: (layers * directions) x B x H
        last = torch.cat([h[-2], h[-1]], 1) if self.rnn.bidirectional else h[-1]  # B x directions*H
        return self.head(last)  # B x classes


class CharLM(nn.Module):
    """Character language model: ids -> embedding -> recurrent layers -> next-character logits at every step."""

    def __init__(self, vocab_size: int, embed_dim: int, cfg: RNNConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = recurrent(cfg, embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden * (2 if self.rnn.bidirectional else 1), vocab_size)

    def forward(self, ids: torch.Tensor, state=None):
        out, state = self.rnn(self.embed(ids), state)  # B x L x H
        return self.head(self.drop(out)), state  # B x L x vocab


@torch.no_grad()
def sample_chars(lm: CharLM, first: int, n: int, temperature: float, generator: torch.Generator) -> list[int]:
    """n character ids drawn one at a time from softmax(logits / temperature), starting after `first`."""
    device = next(lm.parameters()).device
    ids, state, x = [], None, torch.tensor([[first]], device=device)
    for _ in range(n):
        logits, state = lm(x, state)
        probs = F.softmax(logits[0, -1].float().cpu() / temperature, dim=0)
        nxt = int(torch.multinomial(probs, 1, generator=generator))
        ids.append(nxt)
        x = torch.tensor([[nxt]], device=device)
    return ids


# ------------------------------------------------------------------------------------------ palindromes


class HandLSTMCell(nn.Module):
    """One LSTM step from the equations, with nn.LSTM's parameter layout (gates stacked i, f, g, o), so the
    same weights give the same numbers:
        i, f, o = sigmoid(W_i x + U_i h + b_i), ...     g = tanh(W_g x + U_g h + b_g)
        c' = f * c + i * g                               h' = o * tanh(c')
    """

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden))
        bound = hidden ** -0.5  # nn.LSTM's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state  # B x H each
        gates = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh  # B x 4H
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class HandLSTM(nn.Module):
    """The cell unrolled over time; input and outputs shaped as a one-layer batch_first nn.LSTM's."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.cell = HandLSTMCell(input_size, hidden)

    def forward(self, x: torch.Tensor):
        # x: B x T x I
        h = c = x.new_zeros(len(x), self.cell.hidden)
        outputs = []
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
            outputs.append(h)
        return torch.stack(outputs, 1), (h[None], c[None])  # B x T x H, (1 x B x H, 1 x B x H)


PALINDROME_CELLS = ("hand_lstm", "lstm", "rnn")


class PalindromeNet(nn.Module):
    """Reads the first T-1 digits (one-hot) and predicts the last one, which must equal the first."""

    def __init__(self, cell: str, hidden: int, digits: int = 10):
        super().__init__()
        self.digits = digits
        self.rnn = {"hand_lstm": lambda: HandLSTM(digits, hidden),
                    "lstm": lambda: nn.LSTM(digits, hidden, batch_first=True),
                    "rnn": lambda: nn.RNN(digits, hidden, batch_first=True)}[cell]()
        self.head = nn.Linear(hidden, digits)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(F.one_hot(seq, self.digits).float())  # B x (T-1) x H
        return self.head(out[:, -1])  # B x digits
