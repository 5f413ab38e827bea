"""Scenes as COG URLs: each block reads its window by range requests through the address
guard, and the lines are those of the same scenes read from a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sanchari_processes.aoi import find_scenes, load_aoi, plan_aoi
from sanchari_processes.aoi.tasks import run_block
from sanchari_processes.engine.build import build_engine
from sanchari_processes.netguard import AllowList, NetPolicy
from sanchari_processes.sources.settings import RemoteSettings
from tests.aoi_fixtures import GSD, MARGIN_M, tiny_options
from tests.service_fixtures import static_server


def test_cog_urls_give_the_lines_of_the_folder(
    tmp_path: Path, scenes_dir: Path, aoi_file: Path, tiny_checkpoint: Path
) -> None:
    options = tiny_options(tiny_checkpoint)
    engine = build_engine(options)
    area = load_aoi(aoi_file)
    local = plan_aoi(area, find_scenes([str(scenes_dir)]), GSD, block_m=120, margin_m=MARGIN_M)
    remote = RemoteSettings(policy=NetPolicy(allow=AllowList.parse("127.0.0.1")))
    with static_server(scenes_dir) as url:
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(f"{url}/{p.name}\n" for p in sorted(scenes_dir.glob("*.tif"))))
        scenes = find_scenes([str(urls)], remote)
        assert all(s.remote for s in scenes) and len(scenes) == 4
        plan = plan_aoi(area, scenes, GSD, block_m=120, margin_m=MARGIN_M)
        assert [b.name for b in plan.blocks] == [b.name for b in local.blocks]
        # the blocks that read the most scenes (a corner where four meet, and an edge)
        chosen = sorted(range(len(plan.blocks)), key=lambda i: -len(plan.blocks[i].scenes))[:2]
        for i in chosen:
            by_url = run_block(plan.task(plan.blocks[i], options, remote), engine)
            by_path = run_block(local.task(local.blocks[i], options, remote), engine)
            assert by_url.coverage == by_path.coverage > 0.5
            assert len(by_url.pieces) == len(by_path.pieces)
            for a, b in zip(by_url.pieces, by_path.pieces, strict=True):
                np.testing.assert_array_equal(a.coords, b.coords)


def test_without_the_allow_list_a_loopback_cog_is_refused(scenes_dir: Path) -> None:
    from sanchari_processes.errors import InvalidInputError

    with static_server(scenes_dir) as url, pytest.raises(InvalidInputError, match="public"):
        find_scenes([f"{url}/scene_00.tif"])
