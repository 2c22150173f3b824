"""The relay's partition choice is Kafka's: the same as aiokafka's default partitioner."""

import random
import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2

from relance.common.partitioning import murmur2, partition_for


def test_murmur2_agrees_with_the_reference_on_keys_of_every_length():
    rng = random.Random(7)
    keys = [bytes(rng.randrange(256) for _ in range(n)) for n in range(70) for _ in range(20)]
    keys += [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(2000)]
    for key in keys:
        assert murmur2(key) & 0x7FFFFFFF == reference_murmur2(key) & 0x7FFFFFFF, key


@pytest.mark.parametrize("partitions", [1, 3, 6, 12, 64])
def test_partition_matches_aiokafkas_default_partitioner(partitions):
    rng = random.Random(partitions)
    everything = list(range(partitions))
    for _ in range(500):
        key = str(uuid.UUID(int=rng.getrandbits(128))).encode()
        assert partition_for(key, partitions) == DefaultPartitioner()(key, everything, everything)
