"""Which partition a key goes to: Kafka's default rule (murmur2 of the key, positive,
modulo the partition count), so that one invoice's events always share a partition
whichever client wrote them. Word-at-a-time for speed: the relay hashes every key."""

from __future__ import annotations

import struct
from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    length = len(data)
    h = (_SEED ^ length) & _MASK
    words = length // 4
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    base = words * 4
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partitions_for(keys: Sequence[bytes], partitions: int) -> list[int]:
    """``partition_for`` of each key, for a whole batch at once (see :func:`murmur2_many`)."""
    return [(h & 0x7FFFFFFF) % partitions for h in murmur2_many(keys)]


_BATCH_AT_LEAST = 16  # fewer keys of one length are hashed one by one


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """``murmur2`` of each key, in order.

    Keys of the same length (a batch of invoice ids are all 36 bytes) are hashed together:
    each key's 32-bit state is a 64-bit lane of one large integer, so every step of the
    hash is a few operations on that integer instead of a few per key. A lane's product
    stays below 2**63, and each shift is masked back to 32 bits, so lanes never mix.
    """
    hashes = [0] * len(keys)
    by_length: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(position)
    for length, positions in by_length.items():
        if len(positions) < _BATCH_AT_LEAST:
            for position in positions:
                hashes[position] = murmur2(keys[position])
            continue
        group = [keys[position] for position in positions]
        for position, value in zip(positions, _murmur2_lanes(group, length), strict=True):
            hashes[position] = value
    return hashes


def _murmur2_lanes(keys: list[bytes], length: int) -> tuple[int, ...]:
    count = len(keys)
    lanes = struct.Struct(f"<{count}Q")
    low = int.from_bytes(b"\xff\xff\xff\xff\x00\x00\x00\x00" * count, "little")

    def lane_int(values: Sequence[int]) -> int:
        return int.from_bytes(lanes.pack(*values), "little")

    words = length // 4
    base = words * 4
    h = lane_int([(_SEED ^ length) & _MASK] * count)
    if words:
        flat = struct.unpack(f"<{words * count}I", b"".join(key[:base] for key in keys))
        for word in range(words):
            k = (lane_int(flat[word::words]) * _M) & low
            k ^= (k >> 24) & low
            k = (k * _M) & low
            h = ((h * _M) & low) ^ k
    if length & 3:
        # the tail bytes, little-endian, as murmur2 folds them in one by one
        h ^= lane_int([int.from_bytes(key[base:], "little") for key in keys])
        h = (h * _M) & low
    h ^= (h >> 13) & low
    h = (h * _M) & low
    h ^= (h >> 15) & low
    return lanes.unpack(h.to_bytes(8 * count, "little"))
