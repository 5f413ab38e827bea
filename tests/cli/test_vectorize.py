"""``sanchari vectorize``: a road mask in, centrelines out."""

from __future__ import annotations

import json

import numpy as np

from tests.cli_fixtures import run
from tests.synthetic import write_geotiff


def test_vectorize_binary_mask(capsys, tmp_path):
    mask = np.zeros((1, 200, 200), np.uint8)
    mask[0, 95:105, :] = 255
    mask[0, :, 95:105] = 255
    path = write_geotiff(tmp_path / "mask.tif", mask)
    out = tmp_path / "roads.geojson"
    code, _, err = run(capsys, "vectorize", str(path), "-o", str(out))
    assert code == 0, err
    features = json.loads(out.read_text())["features"]
    assert len(features) == 4  # a cross: one junction, four arms to the border
    assert {f["properties"]["u_degree"] for f in features} | {
        f["properties"]["v_degree"] for f in features
    } == {1, 4}
