"""Stratified, seeded splits."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn.data import stratified_split, stratified_subset
from minisnn.data.split import class_quotas


def test_cifar_sized_split_is_exactly_balanced():
    labels = np.repeat(np.arange(10), 5000)
    np.random.default_rng(0).shuffle(labels)
    train, val = stratified_split(labels, 5000, seed=0)
    assert len(train) == 45000 and len(val) == 5000
    assert np.bincount(labels[val]).tolist() == [500] * 10
    assert np.bincount(labels[train]).tolist() == [4500] * 10
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(50000))
    assert np.all(np.diff(val) > 0) and np.all(np.diff(train) > 0)


@given(st.lists(st.integers(0, 6), min_size=1, max_size=200), st.data(), st.integers(0, 2**31))
def test_split_partitions_and_follows_class_shares(labels, data, seed):
    labels = np.array(labels)
    val_size = data.draw(st.integers(0, len(labels)))
    train, val = stratified_split(labels, val_size, seed)
    assert len(val) == val_size
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    counts = np.bincount(labels, minlength=7)
    got = np.bincount(labels[val], minlength=7)
    share = counts * val_size / len(labels)
    assert np.all(np.abs(got - share) < 1 + 1e-9)  # every class within one item of its exact share
    t2, v2 = stratified_split(labels, val_size, seed)
    assert np.array_equal(v2, val) and np.array_equal(t2, train)


def test_seed_changes_the_split():
    labels = np.repeat(np.arange(4), 50)
    assert not np.array_equal(stratified_split(labels, 40, 1)[1], stratified_split(labels, 40, 2)[1])


def test_quotas_sum_exactly():
    q = class_quotas(np.array([3, 3, 3]), 4)
    assert q.sum() == 4 and q.tolist() == [2, 1, 1]  # ties go to the lower class id


@given(st.integers(0, 5), st.integers(0, 2**31))
def test_subset_takes_per_class(per_class, seed):
    labels = np.repeat(np.arange(5), [5, 6, 7, 8, 9])
    idx = stratified_subset(labels, per_class, seed)
    assert np.bincount(labels[idx], minlength=5).tolist() == [per_class] * 5
    assert len(np.unique(idx)) == len(idx)


def test_bad_arguments():
    with pytest.raises(ValueError, match="val_size must be an integer"):
        stratified_split(np.arange(5), 6)
    with pytest.raises(ValueError, match="1-D integer array"):
        stratified_split(np.zeros(5), 2)
    with pytest.raises(ValueError, match="per_class must be in"):
        stratified_subset(np.array([0, 0, 1]), 2)
