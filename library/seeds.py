"""Offsets added to `train.seed` for the random streams that are not the training RNG.

Each stream draws from its own `torch.Generator().manual_seed(train.seed + OFFSET)`: drawing from it never
shifts the training RNG (so a resumed trial still trains bit-identically), it gives the same draws at every
evaluation (so epochs compare on the same noise), and distinct offsets keep the streams from repeating the
training stream's or each other's draws. Changing a value changes every trial's images and scores.

`replicate_seed` is the other derivation: the training seed itself of a configuration's extra replicates.
"""
import hashlib

SAMPLE_GRID = 12345
"""Fixed noise of the sample grid written at every evaluation (GAN progress grid, VAE sample grid)."""
INTERPOLATION = 23456
"""Noise vectors at the ends of the GAN's interpolation grid."""
SCORED_SAMPLES = 54321
"""Noise of the generated images a GAN is scored on."""
TEXT_SAMPLE = 4242
"""Draws of the character model's generated text."""
PALINDROME_TEST = 10_000
"""The palindrome job's test set (its training set is drawn with train.seed itself)."""
PALINDROME_VAL = 20_000
"""The palindrome job's validation set."""
VAE_EVAL_NOISE = 31_337
"""The noise that samples z for the VAE's validation loss (this offset) and its test loss (this + 1)."""
RESEED_PER_EPOCH = 7919
"""Resume on another worker count (no saved RNG state per rank): rank r at epoch e is reseeded with
train.seed + r + RESEED_PER_EPOCH * e, a prime factor so that no (rank, epoch) pair repeats another's seed."""


def replicate_seed(config_id: str, replicate: int) -> int:
    """`train.seed` of replicate `replicate` >= 1 of the configuration whose replicate 0 is trial `config_id`
    (library.sweep's `repeats`): the first 31 bits of sha1("CONFIG_ID/REPLICATE"). Stable across processes and
    Python versions (hash() is salted per process), so a re-run finds each replicate's trial id again; distinct
    per configuration, so two configurations never share their replicates' seeds. 31 bits keep it a valid seed
    for every generator, offsets above included."""
    digest = hashlib.sha1(f"{config_id}/{replicate}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1
