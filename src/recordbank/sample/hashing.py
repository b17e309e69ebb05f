"""Counter-based randomness: every draw is a pure function of (seed, row index, stream name).

No generator state means any block of rows can be produced alone, in any order, by any
process, and still match a full run byte for byte.
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

_U64 = np.uint64
_MASK = (1 << 64) - 1
_GOLDEN = _U64(0x9E3779B97F4A7C15)

Ints = npt.NDArray[np.int64]
Objs = npt.NDArray[np.object_]
Floats = npt.NDArray[np.float64]


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 finalizer: a bijective 64-bit scramble (wraps modulo 2**64 by design)."""
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


class Hash:
    """Independent uniform draws per (seed, row index, named stream)."""

    def __init__(self, seed: int, idx: Ints) -> None:
        self.seed = seed & _MASK
        self.idx = idx.astype(np.uint64) * _GOLDEN

    def bits(self, stream: str) -> npt.NDArray[np.uint64]:
        key = (self.seed * 0x2545F4914F6CDD1D + zlib.crc32(stream.encode())) & _MASK
        return _mix(self.idx + _mix(np.array([key], dtype=np.uint64)))

    def unit(self, stream: str) -> Floats:
        return (self.bits(stream) >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def below(self, stream: str, n: int) -> Ints:
        return (self.bits(stream) % _U64(n)).astype(np.int64)

    def pick(self, stream: str, weights: tuple[float, ...]) -> Ints:
        cum = np.cumsum(np.asarray(weights, dtype=np.float64))
        return np.minimum(np.searchsorted(cum / cum[-1], self.unit(stream), side="right"),
                          len(weights) - 1).astype(np.int64)


def objs(values: tuple[str, ...] | list[str]) -> Objs:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


def strs(ints: Ints) -> Objs:
    return objs(list(map(str, ints.tolist())))
