"""Offsets added to `train.seed` for the random streams that are not the training RNG.

Each stream draws from its own `torch.Generator().manual_seed(train.seed + OFFSET)`: drawing from it never
shifts the training RNG (so a resumed trial still trains bit-identically), it gives the same draws at every
evaluation (so epochs compare on the same noise), and distinct offsets keep the streams from repeating the
training stream's or each other's draws. Changing a value changes every trial's images and scores.
"""

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
RESEED_PER_EPOCH = 7919
"""Resume on another worker count (no saved RNG state per rank): rank r at epoch e is reseeded with
train.seed + r + RESEED_PER_EPOCH * e, a prime factor so that no (rank, epoch) pair repeats another's seed."""
