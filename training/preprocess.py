"""``sanchari preprocess``: image + mask pairs -> 512 px tiles + a seeded split manifest.

The split is made per source image, not per tile: overlapping tiles of one image share pixels,
so splitting tiles would leak validation pixels into training. Each source folder is split on
its own so every data set is represented in validation.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import cv2
import numpy as np

from sanchari_processes.cli import options, run
from sanchari_processes.errors import InvalidInputError
from training.io import IMAGE_SUFFIXES, read_binary, read_rgb, write_binary, write_rgb

MANIFEST_VERSION = 2
KAGGLE_DATASET = "balraj98/deepglobe-road-extraction-dataset"
#: The one ground resolution every source is resampled to (metres per pixel). 0.5 m is
#: DeepGlobe's and most very-high-resolution imagery's (NAIP 0.6 m, Maxar 0.3-0.5 m): the narrow
#: rural tracks the model is for are 4-8 px wide there and 2-4 px at 1 m. The model card gives
#: the measurement behind the choice.
DEFAULT_TARGET_GSD = 0.5
#: Source and target resolutions closer than this are not resampled.
_GSD_TOLERANCE = 0.02


@dataclass(frozen=True)
class Pair:
    """One labelled image: where its image, mask and optional no-data mask are."""

    source: str
    name: str
    image: Path
    mask: Path
    valid: Path | None = None


@dataclass(frozen=True)
class PreprocessConfig:
    """How pairs are resampled, tiled and split."""

    tile_size: int = 512
    overlap: float = 0.5
    val_fraction: float = 0.15
    seed: int = 0
    workers: int = 1
    target_gsd_m: float = DEFAULT_TARGET_GSD

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target_gsd_m) and self.target_gsd_m > 0):
            raise InvalidInputError(f"target GSD must be positive, got {self.target_gsd_m}")
        if self.tile_size < 32:
            raise InvalidInputError(f"tile size must be >= 32, got {self.tile_size}")
        if not 0.0 <= self.overlap < 1.0:
            raise InvalidInputError(f"overlap must be within 0..1, got {self.overlap}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InvalidInputError(f"val fraction must be within 0..1, got {self.val_fraction}")

    @property
    def stride(self) -> int:
        return max(1, round(self.tile_size * (1.0 - self.overlap)))


def _by_stem(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def find_pairs(source: Path) -> list[Pair]:
    """Pairs from ``images/`` + ``masks/`` [+ valid/] or DeepGlobe ``*_sat.jpg``/``*_mask.png``."""
    if not source.is_dir():
        raise InvalidInputError(f"{source}: not a directory")
    label = source.name
    images_dir, masks_dir, valid_dir = source / "images", source / "masks", source / "valid"
    if images_dir.is_dir() and masks_dir.is_dir():
        images, masks = _by_stem(images_dir), _by_stem(masks_dir)
        valids = _by_stem(valid_dir) if valid_dir.is_dir() else None
        unmatched = sorted(set(images) ^ set(masks))
        if unmatched:
            raise InvalidInputError(
                f"{source}: {len(unmatched)} image(s)/mask(s) without a partner, e.g. "
                f"{unmatched[0]!r}"
            )
        if valids is not None and set(valids) != set(images):
            missing = sorted(set(images) - set(valids))
            raise InvalidInputError(
                f"{valid_dir}: no valid mask for {len(missing)} image(s), e.g. {missing[:1]}"
            )
        pairs = [
            Pair(label, n, images[n], masks[n], valids[n] if valids else None)
            for n in sorted(images)
        ]
    else:
        pairs = []
        for sat in sorted(source.rglob("*_sat.jpg")):
            mask = sat.with_name(sat.name[: -len("_sat.jpg")] + "_mask.png")
            if mask.is_file():
                pairs.append(Pair(label, sat.name[: -len("_sat.jpg")], sat, mask))
    if not pairs:
        raise InvalidInputError(
            f"{source}: no image/mask pairs (expected images/ + masks/ folders, or DeepGlobe "
            "*_sat.jpg with *_mask.png)"
        )
    return pairs


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Tile starts along one axis: every ``stride`` plus one flush with the end.

    An axis shorter than ``tile`` gives one start (the tile is then the whole axis).
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def resample_pair(
    image: np.ndarray, mask: np.ndarray, valid: np.ndarray | None, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Image (area when shrinking, bilinear when enlarging), mask and valid (nearest) scaled by
    ``scale`` (output pixels per input pixel); returned as they are when ``scale`` is ~1."""
    if abs(scale - 1.0) <= _GSD_TOLERANCE:
        return image, mask, valid
    height, width = mask.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # cv2: (w, h)
    smooth = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = cv2.resize(image, size, interpolation=smooth)

    def nearest(m: np.ndarray) -> np.ndarray:
        return cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0

    return image, nearest(mask), nearest(valid) if valid is not None else None


def split_pairs(
    pairs: Sequence[Pair], val_fraction: float, seed: int
) -> dict[tuple[str, str], str]:
    """``{(source, name): "train" | "val"}``, seeded and made per source (pure function)."""
    split: dict[tuple[str, str], str] = {}
    for source in sorted({p.source for p in pairs}):
        names = sorted(p.name for p in pairs if p.source == source)
        rng = np.random.default_rng([seed, *source.encode()])
        order = rng.permutation(len(names))
        n_val = math.ceil(val_fraction * len(names)) if val_fraction > 0 else 0
        n_val = min(n_val, len(names) - 1)
        for rank, index in enumerate(order):
            split[(source, names[index])] = "val" if rank < n_val else "train"
    return split


@dataclass(frozen=True)
class TileJob:
    """One pair to cut: its split, its own GSD and the run's target GSD and tiling."""

    pair: Pair
    split: str
    source_gsd_m: float
    out: Path
    config: PreprocessConfig


def _tile_pair(job: TileJob) -> list[dict[str, Any]]:
    """Resample one pair to the target GSD and cut it into tiles under ``out``; returns the
    manifest rows (tiles without data are skipped)."""
    pair, split, out = job.pair, job.split, job.out
    tile, stride, gsd_m = job.config.tile_size, job.config.stride, job.config.target_gsd_m
    image = read_rgb(pair.image)
    mask = read_binary(pair.mask)
    valid = read_binary(pair.valid) if pair.valid else None
    if mask.shape != image.shape[:2] or (valid is not None and valid.shape != mask.shape):
        raise InvalidInputError(
            f"{pair.image}: image {image.shape[:2]}, mask {mask.shape} and valid sizes differ"
        )
    image, mask, valid = resample_pair(image, mask, valid, job.source_gsd_m / gsd_m)
    folder = out / "tiles" / pair.source
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    height, width = mask.shape
    for r in tile_origins(height, tile, stride):
        for c in tile_origins(width, tile, stride):
            window = np.s_[r : r + tile, c : c + tile]
            v = valid[window] if valid is not None else None
            if v is not None and not v.any():
                continue
            stem = f"{pair.name}_r{r}_c{c}"
            write_rgb(folder / f"{stem}.png", image[window])
            write_binary(folder / f"{stem}_mask.png", mask[window])
            row = {
                "image": f"tiles/{pair.source}/{stem}.png",
                "mask": f"tiles/{pair.source}/{stem}_mask.png",
                "valid": None,
                "split": split,
                "source": pair.source,
                "origin": pair.name,
                "row": r,
                "col": c,
                "gsd_m": gsd_m,
            }
            if v is not None:
                write_binary(folder / f"{stem}_valid.png", v)
                row["valid"] = f"tiles/{pair.source}/{stem}_valid.png"
            rows.append(row)
    return rows


@dataclass(frozen=True)
class Source:
    """A folder of pairs, its ground resolution and whether any of it may be held out."""

    folder: Path
    gsd_m: float
    #: Train-only sources (pseudo-labels on target imagery) are never held out: their labels
    #: are the model's own, so scoring on them would measure nothing.
    train_only: bool = False


def preprocess(sources: Sequence[Source], out: Path, config: PreprocessConfig) -> dict[str, Any]:
    """Resample and tile every pair of every source into ``out``; writes the manifest."""
    all_pairs: list[Pair] = []
    gsd: dict[str, float] = {}
    source_rows = []
    train_only: set[str] = set()
    for source in sources:
        pairs = find_pairs(source.folder)
        name = pairs[0].source
        if name in gsd:
            raise InvalidInputError(f"two sources are named {name!r}")
        gsd[name] = source.gsd_m
        if source.train_only:
            train_only.add(name)
        source_rows.append(
            {
                "name": name,
                "path": str(source.folder.resolve()),
                "gsd_m": source.gsd_m,
                "train_only": source.train_only,
            }
        )
        all_pairs.extend(pairs)
    split = split_pairs(
        [p for p in all_pairs if p.source not in train_only], config.val_fraction, config.seed
    )
    split.update({(p.source, p.name): "train" for p in all_pairs if p.source in train_only})
    out.mkdir(parents=True, exist_ok=True)
    if (out / "tiles").exists():
        shutil.rmtree(out / "tiles")  # stale tiles from an earlier split must not linger
    jobs = [TileJob(p, split[(p.source, p.name)], gsd[p.source], out, config) for p in all_pairs]
    if config.workers > 1:
        with ProcessPoolExecutor(config.workers) as pool:
            tiles = [row for rows in pool.map(_tile_pair, jobs, chunksize=4) for row in rows]
    else:
        tiles = [row for job in jobs for row in _tile_pair(job)]
    manifest = {
        "version": MANIFEST_VERSION,
        "config": asdict(config) | {"stride": config.stride},
        "gsd_m": config.target_gsd_m,
        "sources": source_rows,
        "images": [
            {
                "source": p.source,
                "name": p.name,
                "image": str(p.image.resolve()),
                "mask": str(p.mask.resolve()),
                "valid": str(p.valid.resolve()) if p.valid else None,
                "split": split[(p.source, p.name)],
                # the original files' resolution: evaluation resamples them to the model's
                "gsd_m": gsd[p.source],
            }
            for p in all_pairs
        ],
        "tiles": tiles,
    }
    text = json.dumps(manifest, indent=1) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    return manifest


def kaggle_download(target: Path) -> Path:
    """Fetch DeepGlobe roads through the Kaggle API; clear errors when that is not possible."""
    has_env = bool(os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"))
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    if not has_env and not (config_dir / "kaggle.json").is_file():
        raise InvalidInputError(
            f"no Kaggle credentials: put kaggle.json in {config_dir} or set KAGGLE_USERNAME and "
            "KAGGLE_KEY (https://www.kaggle.com/docs/api), or download DeepGlobe yourself and "
            "use --source DIR"
        )
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise InvalidInputError("--download needs the Kaggle client: pip install kaggle") from None
    api = KaggleApi()
    api.authenticate()
    target.mkdir(parents=True, exist_ok=True)
    api.dataset_download_files(KAGGLE_DATASET, path=str(target), unzip=True, quiet=False)
    return target


@click.command("preprocess", context_settings=options.CONTEXT_SETTINGS)
@click.option("-o", "--out", type=options.PATH, required=True, help="Output folder.")
@click.option(
    "--source",
    "sources",
    type=options.PATH,
    multiple=True,
    help="Folder of pairs (images/ + masks/ [+ valid/], or DeepGlobe *_sat.jpg/*_mask.png); "
    "repeat for several.",
)
@click.option(
    "--download",
    is_flag=True,
    help=f"Download DeepGlobe roads ({KAGGLE_DATASET}) with the Kaggle API into OUT/raw.",
)
@options.gsd(
    "gsds",
    multiple=True,
    help="Metres per pixel of the sources: once for all, or once per --source (default 0.5).",
)
@click.option(
    "--target-gsd",
    type=options.POSITIVE_FLOAT,
    default=DEFAULT_TARGET_GSD,
    help="Resample every source to this many metres per pixel, the model's one training "
    f"resolution (default {DEFAULT_TARGET_GSD}).",
)
@click.option(
    "--train-only",
    multiple=True,
    metavar="NAME",
    help="A source (by folder name) never held out, e.g. pseudo-labels from "
    "`sanchari pseudo-label`; repeatable.",
)
@click.option("--tile", type=options.POSITIVE_INT, default=512, help="Tile side (default 512).")
@click.option("--overlap", type=options.FRACTION, default=0.5, help="Default 0.5.")
@click.option("--val-fraction", type=options.FRACTION, default=0.15, help="Default 0.15.")
@options.seed(help="Split seed.")
@click.option("--workers", type=options.POSITIVE_INT, default=os.cpu_count() or 1)
def command(
    out: Path,
    sources: tuple[Path, ...],
    download: bool,
    gsds: tuple[float, ...],
    target_gsd: float,
    train_only: tuple[str, ...],
    tile: int,
    overlap: float,
    val_fraction: float,
    seed: int,
    workers: int,
) -> None:
    """Tile image + mask pairs into 512 px tiles with a seeded train/val split."""
    folders = list(sources)
    if download:
        folders.append(kaggle_download(out / "raw"))
    if not folders:
        raise InvalidInputError("give --source DIR (repeatable) or --download")
    resolutions = list(gsds) or [0.5]
    if len(resolutions) == 1:
        resolutions = resolutions * len(folders)
    if len(resolutions) != len(folders):
        raise InvalidInputError(f"{len(resolutions)} --gsd values for {len(folders)} sources")
    unknown = sorted(set(train_only) - {s.name for s in folders})
    if unknown:
        raise InvalidInputError(f"--train-only {unknown[0]}: no --source folder of that name")
    config = PreprocessConfig(
        tile_size=tile,
        overlap=overlap,
        val_fraction=val_fraction,
        seed=seed,
        workers=workers,
        target_gsd_m=target_gsd,
    )
    manifest = preprocess(
        [
            Source(folder, gsd, folder.name in train_only)
            for folder, gsd in zip(folders, resolutions, strict=True)
        ],
        out,
        config,
    )
    tiles = manifest["tiles"]
    n_val = sum(t["split"] == "val" for t in tiles)
    n_img_val = sum(i["split"] == "val" for i in manifest["images"])
    print(
        f"{len(manifest['images'])} images ({n_img_val} val) at {config.target_gsd_m} m -> "
        f"{len(tiles)} tiles ({len(tiles) - n_val} train, {n_val} val); "
        f"manifest {out / 'manifest.json'}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.preprocess``: ``sanchari preprocess``."""
    return run(command, argv, "python -m training.preprocess")


if __name__ == "__main__":
    sys.exit(main())
