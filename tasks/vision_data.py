"""Image data with (label, attribute) groups: Waterbirds, CelebA, and a synthetic coloured-digits set.

Groups follow Sagawa et al. (2020) and WILDS: group = (label y, spurious attribute a), numbered ``y * n_attrs + a``.
The real sets are read from their public releases (WILDS / group_DRO layouts); the synthetic set is generated
from scikit-learn's bundled 8x8 digits drawn on coloured backgrounds, with the label-colour correlation ``rho``
in training as a parameter, so worst-group methods can be compared on a CPU in minutes.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from biasboard.harness.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class ImageSplit:
    """One split: labels, attributes, ids, and the images (in memory, or files decoded per batch)."""

    y: np.ndarray
    a: np.ndarray
    ids: list[str]
    images: torch.Tensor | None = None
    """(N, 3, H, W) floats in [0, 1] for generated sets."""
    paths: list[Path] | None = None
    """Image files for on-disk sets (decoded, resized and centre-cropped to ``image_size`` when read)."""
    image_size: int = 224

    def __len__(self) -> int:
        return len(self.y)

    def load(self, idx: Sequence[int]) -> torch.Tensor:
        """Images of the given rows as a (B, 3, H, W) float tensor in [0, 1]."""
        if self.images is not None:
            return self.images[torch.as_tensor(np.asarray(idx), dtype=torch.long)]
        return torch.stack([_read_image(self.paths[i], self.image_size) for i in idx])


@dataclass
class GroupDataset:
    """Train / val / test splits with named labels and attributes."""

    name: str
    splits: dict[str, ImageSplit]
    label_names: tuple[str, ...]
    attr_names: tuple[str, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def n_groups(self) -> int:
        return len(self.label_names) * len(self.attr_names)

    def groups(self, split: str) -> np.ndarray:
        s = self.splits[split]
        return s.y * len(self.attr_names) + s.a

    def group_names(self) -> list[str]:
        return [f"{ly}/{la}" for ly in self.label_names for la in self.attr_names]


def subsample(data: GroupDataset, n: int, seed: int = 0) -> GroupDataset:
    """At most ``n`` rows of each split, drawn at random (fixed seed) so every group can still appear."""
    rng = np.random.default_rng(seed)
    splits = {}
    for name, s in data.splits.items():
        keep = np.sort(rng.permutation(len(s))[:n])
        splits[name] = ImageSplit(s.y[keep], s.a[keep], [s.ids[i] for i in keep],
                                  images=None if s.images is None else s.images[torch.as_tensor(keep)],
                                  paths=None if s.paths is None else [s.paths[i] for i in keep],
                                  image_size=s.image_size)
    return GroupDataset(data.name, splits, data.label_names, data.attr_names, list(data.notes))


def _read_image(path: Path, size: int) -> torch.Tensor:
    """Decode, resize the short side to size/0.875 and centre-crop to size (the group_DRO / WILDS eval transform)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = (size / 0.875) / min(w, h)
            img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            w, h = img.size
            left, top = (w - size) // 2, (h - size) // 2
            img = img.crop((left, top, left + size, top + size))
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except OSError as exc:
        raise DataError(f"cannot read image: {exc}", path=path) from None
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _int_field(row: dict, name: str, path: Path, line: int, allowed: set[int]) -> int:
    raw = row.get(name)
    try:
        value = int(float(raw))
    except (TypeError, ValueError):
        raise DataError(f"expected an integer, got {raw!r}", path=path, row=line, field=name) from None
    if value not in allowed:
        raise DataError(f"expected one of {sorted(allowed)}, got {value}", path=path, row=line, field=name)
    return value


def _read_csv(path: Path, required: Sequence[str]) -> list[dict]:
    if not path.exists():
        raise DataError("file not found", path=path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"missing column(s) {missing}; found {reader.fieldnames}", path=path, row=1,
                            field=missing[0])
        return list(reader)


def load_waterbirds(root: str | Path, *, image_size: int = 224) -> GroupDataset:
    """Waterbirds (Sagawa et al. 2020) from ``metadata.csv`` (columns img_filename, y, split, place).

    Same layout in group_DRO's ``waterbird_complete95_forest2water2`` and WILDS' ``waterbirds_v1.0``:
    split 0/1/2 = train/val/test; y 1 = waterbird; place 1 = water background. Image paths are relative to root.
    """
    root = Path(root)
    path = root / "metadata.csv"
    rows = _read_csv(path, ("img_filename", "y", "split", "place"))
    parts: dict[str, dict[str, list]] = {s: {"y": [], "a": [], "ids": [], "paths": []} for s in SPLITS}
    for line, row in enumerate(rows, start=2):
        split = SPLITS[_int_field(row, "split", path, line, {0, 1, 2})]
        parts[split]["y"].append(_int_field(row, "y", path, line, {0, 1}))
        parts[split]["a"].append(_int_field(row, "place", path, line, {0, 1}))
        parts[split]["ids"].append(row["img_filename"])
        parts[split]["paths"].append(root / row["img_filename"])
    return GroupDataset("waterbirds", _make_splits(parts, image_size, path), ("landbird", "waterbird"),
                        ("land", "water"))


def _celeba_table(root: Path, stem: str) -> tuple[Path, list[str], list[list[str]]]:
    """Header and rows of a CelebA list file, as CSV (group_DRO / WILDS / Kaggle) or the original .txt."""
    csv_path, txt_path = root / f"{stem}.csv", root / f"{stem}.txt"
    if csv_path.exists():
        with open(csv_path, newline="") as fh:
            table = list(csv.reader(fh))
        if not table:
            raise DataError("empty file", path=csv_path)
        return csv_path, table[0], table[1:]
    if txt_path.exists():
        lines = txt_path.read_text().splitlines()
        if stem == "list_attr_celeba":  # line 1: count; line 2: the 40 attribute names; rows: file + 40 values
            if len(lines) < 2:
                raise DataError("expected a count line and a header line", path=txt_path)
            return txt_path, ["image_id"] + lines[1].split(), [ln.split() for ln in lines[2:] if ln.strip()]
        return txt_path, ["image_id", "partition"], [ln.split() for ln in lines if ln.strip()]
    raise DataError(f"neither {csv_path.name} nor {txt_path.name} found", path=root)


def load_celeba(root: str | Path, *, target: str = "Blond_Hair", attribute: str = "Male",
                image_size: int = 224) -> GroupDataset:
    """CelebA (Liu et al. 2015) with groups (target, attribute), e.g. Blond_Hair x Male (Sagawa et al. 2020).

    Reads ``list_attr_celeba`` (values -1/1 or 0/1) and ``list_eval_partition`` (0/1/2 = train/val/test) as CSV
    (group_DRO / WILDS layouts) or the original .txt files; images in ``img_align_celeba/``.
    """
    root = Path(root)
    apath, header, rows = _celeba_table(root, "list_attr_celeba")
    for name in (target, attribute):
        if name not in header:
            raise DataError(f"no attribute {name!r}; attributes: {', '.join(header[1:])}", path=apath, row=1,
                            field=name)
    ti, ai = header.index(target), header.index(attribute)
    attrs: dict[str, tuple[int, int]] = {}
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(f"expected {len(header)} fields, got {len(row)}", path=apath, row=line)
        vals = []
        for col, name in ((ti, target), (ai, attribute)):
            v = row[col].strip()
            if v not in ("1", "-1", "0"):
                raise DataError(f"expected -1/0/1, got {v!r}", path=apath, row=line, field=name)
            vals.append(1 if v == "1" else 0)
        attrs[row[0]] = (vals[0], vals[1])
    ppath, pheader, prows = _celeba_table(root, "list_eval_partition")
    parts: dict[str, dict[str, list]] = {s: {"y": [], "a": [], "ids": [], "paths": []} for s in SPLITS}
    for line, row in enumerate(prows, start=2):
        if len(row) < 2 or row[1].strip() not in ("0", "1", "2"):
            raise DataError(f"expected image id and partition 0/1/2, got {row!r}", path=ppath, row=line,
                            field=pheader[1] if len(pheader) > 1 else "partition")
        if row[0] not in attrs:
            raise DataError(f"image {row[0]!r} has no row in {apath.name}", path=ppath, row=line, field=pheader[0])
        split = SPLITS[int(row[1])]
        y, a = attrs[row[0]]
        parts[split]["y"].append(y)
        parts[split]["a"].append(a)
        parts[split]["ids"].append(row[0])
        parts[split]["paths"].append(root / "img_align_celeba" / row[0])
    return GroupDataset(f"celeba_{target}_{attribute}", _make_splits(parts, image_size, ppath),
                        (f"not_{target}", target), (f"not_{attribute}", attribute))


def _make_splits(parts: dict, image_size: int, path: Path) -> dict[str, ImageSplit]:
    out = {}
    for split, p in parts.items():
        if not p["y"]:
            raise DataError(f"no rows in the {split} split", path=path)
        out[split] = ImageSplit(np.asarray(p["y"], dtype=np.int64), np.asarray(p["a"], dtype=np.int64), p["ids"],
                                paths=p["paths"], image_size=image_size)
    return out


# ---- synthetic coloured digits ------------------------------------------------------------------------------------

BACKGROUNDS = ((0.75, 0.2, 0.2), (0.2, 0.6, 0.25))
"""Attribute 0 = red background, 1 = green background."""
DIGITS_VERSION = "1"
"""Bump when the generator changes: it is part of the task version."""


def digits_file() -> Path:
    """sklearn's bundled digits file (the generator's only input; hashed into the cell key)."""
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"


def _draw(pixels: np.ndarray, attrs: np.ndarray, rng: np.random.Generator, scale: int) -> torch.Tensor:
    """White digit strokes over a jittered background colour, upsampled by ``scale`` (nearest)."""
    ink = (pixels.reshape(-1, 8, 8) / 16.0).astype(np.float32)
    ink = np.kron(ink, np.ones((scale, scale), dtype=np.float32))
    bg = np.asarray(BACKGROUNDS, dtype=np.float32)[attrs] + rng.normal(0, 0.05, (len(attrs), 3)).astype(np.float32)
    img = ink[:, None] * 1.0 + (1 - ink[:, None]) * bg[:, :, None, None]
    img = img + rng.normal(0, 0.05, img.shape).astype(np.float32)
    return torch.from_numpy(np.clip(img, 0.0, 1.0))


def make_colored_digits(*, rho: float, data_seed: int = 0, scale: int = 2,
                        fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> GroupDataset:
    """Binary label y = (digit >= 5); attribute a = background colour.

    Train: a = y with probability ``rho`` (so groups (y, a != y) are rare when rho is near 1; rho 0.5 = no
    correlation). Val and test: every digit drawn once on each background, so the four groups are balanced
    and each example's pair differs only in the spurious attribute. The digits are split disjointly between
    train / val / test. The data do not depend on the training seed (``data_seed`` fixes them), so methods are
    compared on the same examples.
    """
    if not 0.0 <= rho <= 1.0:
        raise DataError(f"rho must be in [0, 1], got {rho}", field="rho")
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(data_seed)
    order = rng.permutation(len(digits.target))
    n_train = int(fractions[0] * len(order))
    n_val = int(fractions[1] * len(order))
    chunks = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    splits = {}
    for split, idx in chunks.items():
        y = (digits.target[idx] >= 5).astype(np.int64)
        if split == "train":
            a = np.where(rng.random(len(idx)) < rho, y, 1 - y)
            ids = [f"digit{i}" for i in idx]
        else:
            idx = np.concatenate([idx, idx])
            y = np.concatenate([y, y])
            a = np.concatenate([np.zeros(len(y) // 2, np.int64), np.ones(len(y) // 2, np.int64)])
            ids = [f"digit{i}/{'red' if c == 0 else 'green'}" for i, c in zip(idx, a)]
        splits[split] = ImageSplit(y, a, ids, images=_draw(digits.data[idx], a, rng, scale), image_size=8 * scale)
    return GroupDataset(f"colored_digits_rho{rho:g}", splits, ("digit0-4", "digit5-9"), ("red", "green"),
                        notes=[f"synthetic: sklearn digits on coloured backgrounds, P(colour matches label) = {rho:g} "
                               "in train, balanced val/test"])
