"""The relay's partition choice is Kafka's: the same as aiokafka's default partitioner."""

import random
import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2

from relance.common.partitioning import murmur2, murmur2_many, partition_for, partitions_for


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


def test_a_batch_of_keys_goes_to_the_partitions_the_reference_gives_each_key():
    rng = random.Random(11)
    keys = [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(3000)]
    # keys of other lengths mixed in, some lengths too rare to be hashed together
    keys += [bytes(rng.randrange(256) for _ in range(n)) for n in range(70) for _ in range(20)]
    keys += [b"", b"", b"x" * 4]
    rng.shuffle(keys)
    everything = list(range(6))

    assert partitions_for(keys, 6) == [
        DefaultPartitioner()(key, everything, everything) for key in keys
    ]
    assert [h & 0x7FFFFFFF for h in murmur2_many(keys)] == [
        reference_murmur2(key) & 0x7FFFFFFF for key in keys
    ]


def test_an_empty_batch_has_no_partitions():
    assert partitions_for([], 6) == []
