"""Loaders for the real Waterbirds / CelebA layouts on small fixtures written in those formats, and the synthetic
coloured-digits generator."""
import numpy as np
import pytest
from PIL import Image

from biasboard.harness.errors import DataError
from biasboard.tasks.vision_data import load_celeba, load_waterbirds, make_colored_digits


def _png(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), colour).save(path)


@pytest.fixture
def waterbirds(tmp_path):
    rows = ["img_id,img_filename,y,split,place,place_filename"]
    spec = [(0, 0, 0), (1, 1, 0), (0, 1, 0), (1, 0, 1), (0, 0, 1), (1, 1, 2), (0, 1, 2)]  # (y, place, split)
    for i, (y, place, split) in enumerate(spec):
        name = f"001.Bird/img_{i}.jpg"
        _png(tmp_path / name, (200, 10 * i, 0))
        rows.append(f"{i + 1},{name},{y},{split},{place},/x/y.jpg")
    (tmp_path / "metadata.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_waterbirds_layout(waterbirds):
    data = load_waterbirds(waterbirds, image_size=16)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [3, 2, 2]
    assert data.splits["train"].y.tolist() == [0, 1, 0] and data.splits["train"].a.tolist() == [0, 1, 1]
    assert data.groups("train").tolist() == [0, 3, 1]          # y * 2 + place
    assert data.group_names() == ["landbird/land", "landbird/water", "waterbird/land", "waterbird/water"]
    img = data.splits["train"].load([0, 2])
    assert img.shape == (2, 3, 16, 16) and float(img.max()) <= 1.0
    assert img[0, 0, 0, 0].item() == pytest.approx(200 / 255, abs=0.02)


def test_waterbirds_bad_field_names_file_row_field(waterbirds):
    meta = waterbirds / "metadata.csv"
    lines = meta.read_text().splitlines()
    lines[3] = "3,001.Bird/img_2.jpg,0,7,1,/x/y.jpg"   # file row 4 (header is row 1): split 7 is no split
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_waterbirds(waterbirds)
    msg = str(err.value)
    assert "metadata.csv" in msg and "row 4" in msg and "'split'" in msg


def test_waterbirds_missing_column(tmp_path):
    (tmp_path / "metadata.csv").write_text("img_filename,y,split\na.jpg,0,0\n")
    with pytest.raises(DataError, match="place"):
        load_waterbirds(tmp_path)


def test_unreadable_image_names_the_file(waterbirds):
    (waterbirds / "001.Bird/img_0.jpg").write_text("not an image")
    data = load_waterbirds(waterbirds)
    with pytest.raises(DataError, match="img_0.jpg"):
        data.splits["train"].load([0])


ATTRS = ["5_o_Clock_Shadow", "Blond_Hair", "Male", "Wavy_Hair"]
CELEB = [("000001.jpg", [-1, 1, -1, 1], 0), ("000002.jpg", [-1, -1, 1, -1], 0), ("000003.jpg", [1, 1, 1, -1], 1),
         ("000004.jpg", [-1, -1, -1, 1], 2)]


def _celeba_csv(root):
    (root / "list_attr_celeba.csv").write_text("image_id," + ",".join(ATTRS) + "\n" + "".join(
        f"{n}," + ",".join(map(str, v)) + "\n" for n, v, _ in CELEB))
    (root / "list_eval_partition.csv").write_text("image_id,partition\n" + "".join(f"{n},{p}\n" for n, _, p in CELEB))


def _celeba_txt(root):
    (root / "list_attr_celeba.txt").write_text(f"{len(CELEB)}\n" + " ".join(ATTRS) + "\n" + "".join(
        f"{n} " + " ".join(f"{x:2d}" for x in v) + "\n" for n, v, _ in CELEB))
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, _, p in CELEB))


@pytest.mark.parametrize("writer", [_celeba_csv, _celeba_txt])
def test_celeba_layouts(tmp_path, writer):
    writer(tmp_path)
    for n, _, _ in CELEB:
        _png(tmp_path / "img_align_celeba" / n, (0, 0, 255))
    data = load_celeba(tmp_path, target="Blond_Hair", attribute="Male", image_size=8)
    assert data.splits["train"].y.tolist() == [1, 0] and data.splits["train"].a.tolist() == [0, 1]
    assert data.splits["val"].ids == ["000003.jpg"] and data.groups("val").tolist() == [3]
    wavy = load_celeba(tmp_path, target="Wavy_Hair", attribute="Male")
    assert wavy.splits["train"].y.tolist() == [1, 0] and wavy.label_names == ("not_Wavy_Hair", "Wavy_Hair")
    assert data.splits["test"].load([0]).shape == (1, 3, 8, 8)


def test_celeba_errors(tmp_path):
    _celeba_csv(tmp_path)
    with pytest.raises(DataError, match="no attribute 'Smiling'"):
        load_celeba(tmp_path, target="Smiling")
    text = (tmp_path / "list_attr_celeba.csv").read_text().replace("000002.jpg,-1,-1,1", "000002.jpg,-1,2,1")
    (tmp_path / "list_attr_celeba.csv").write_text(text)
    with pytest.raises(DataError) as err:
        load_celeba(tmp_path)
    assert "list_attr_celeba.csv" in str(err.value) and "row 3" in str(err.value) and "Blond_Hair" in str(err.value)


def test_colored_digits_correlation_and_balance():
    data = make_colored_digits(rho=0.9)
    tr = data.splits["train"]
    assert np.mean(tr.a == tr.y) == pytest.approx(0.9, abs=0.03)
    for split in ("val", "test"):
        counts = np.bincount(data.groups(split), minlength=4)
        s = data.splits[split]
        # every digit drawn once per background: groups (y, 0) and (y, 1) have equal sizes
        assert counts[0] == counts[1] and counts[2] == counts[3]
        assert s.images.shape[1:] == (3, 16, 16)
    digits = {split: {i.split("/")[0] for i in data.splits[split].ids} for split in ("train", "val", "test")}
    assert not digits["train"] & digits["val"] and not digits["train"] & digits["test"] and not digits["val"] & \
        digits["test"]
    # the background colour is the spurious attribute: mean red minus green channel separates a = 0 from a = 1
    img = data.splits["test"].images
    rg = (img[:, 0] - img[:, 1]).mean(dim=(1, 2)).numpy()
    a = data.splits["test"].a
    assert rg[a == 0].min() > rg[a == 1].max()


def test_colored_digits_deterministic_and_rho_extremes():
    a, b = make_colored_digits(rho=0.98), make_colored_digits(rho=0.98)
    assert np.array_equal(a.splits["train"].a, b.splits["train"].a)
    assert bool((a.splits["test"].images == b.splits["test"].images).all())
    one = make_colored_digits(rho=1.0).splits["train"]
    assert np.array_equal(one.a, one.y)
    with pytest.raises(DataError, match="rho"):
        make_colored_digits(rho=1.5)
