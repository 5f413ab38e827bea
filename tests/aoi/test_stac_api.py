"""Scenes from a STAC API search (a stand-in on 127.0.0.1): paged, bounded, and guarded."""

from __future__ import annotations

from pathlib import Path

import pytest

from sanchari_processes.aoi import find_scenes, load_aoi, plan_aoi
from sanchari_processes.aoi import stac_api as stac_api_module
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.netguard import AllowList, NetPolicy
from sanchari_processes.sources.settings import RemoteSettings
from tests.aoi_fixtures import GSD, MARGIN_M
from tests.stac_api_fixtures import stac_api

LOOPBACK = RemoteSettings(policy=NetPolicy(allow=AllowList.parse("127.0.0.1")))


def test_a_search_pages_through_the_items_and_plans_as_the_folder(
    scenes_dir: Path, aoi_file: Path
) -> None:
    area = load_aoi(aoi_file)
    folder = plan_aoi(area, find_scenes([str(scenes_dir)]), GSD, block_m=120, margin_m=MARGIN_M)
    with stac_api(scenes_dir) as (url, api):
        scenes = find_scenes([f"{url}/search?collections=scenes"], LOOPBACK, area)
        searches = [p for p in api.requests if p.startswith("/search")]
    assert len(scenes) == 4 and all(s.remote for s in scenes)
    assert sorted(Path(s.location).name for s in scenes) == sorted(
        p.name for p in scenes_dir.glob("*.tif")
    )
    assert len(searches) == 2 and "page=2" in searches[1]  # the next link was followed
    assert "bbox=" in searches[0] and "collections=scenes" in searches[0]
    plan = plan_aoi(area, scenes, GSD, block_m=120, margin_m=MARGIN_M)
    assert [b.name for b in plan.blocks] == [b.name for b in folder.blocks]
    assert [len(b.scenes) for b in plan.blocks] == [len(b.scenes) for b in folder.blocks]


def test_more_items_than_the_bound_is_one_error(
    scenes_dir: Path, aoi_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stac_api_module, "MAX_SEARCH_ITEMS", 3)
    with stac_api(scenes_dir) as (url, api), pytest.raises(InvalidInputError, match="more than 3"):
        find_scenes([f"{url}/search"], LOOPBACK, load_aoi(aoi_file))
    assert len([p for p in api.requests if p.startswith("/search")]) == 2  # stopped at 4 items


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ("/search?collections=other", "no items over the area"),
        ("/search?bbox=0,0,1,1", "parameter 'bbox' is not supported"),
        ("/search?limit=0", "'limit' is a page size"),
        ("/v2/search", "HTTP 404"),
    ],
)
def test_a_bad_search_is_one_error(
    scenes_dir: Path, aoi_file: Path, search: str, message: str
) -> None:
    with stac_api(scenes_dir) as (url, _), pytest.raises(InvalidInputError, match=message):
        find_scenes([url + search], LOOPBACK, load_aoi(aoi_file))


def test_without_the_allow_list_the_api_is_refused(scenes_dir: Path, aoi_file: Path) -> None:
    with stac_api(scenes_dir) as (url, api), pytest.raises(InvalidInputError, match="public"):
        find_scenes([f"{url}/search"], RemoteSettings(), load_aoi(aoi_file))
    assert api.requests == []


def test_links_the_api_returns_are_guarded_too(
    scenes_dir: Path, aoi_file: Path, tmp_path: Path
) -> None:
    """A next link to a local file, or assets on a host the allow-list does not name."""
    from sanchari_processes.aoi.stac_api import GuardedStacApiIO

    io = GuardedStacApiIO(LOOPBACK)
    secret = tmp_path / "secret.json"
    secret.write_text("{}")
    with pytest.raises(InvalidInputError, match="only http"):
        io.read_text(str(secret))
    with pytest.raises(InvalidInputError, match="outside the address guard"):
        io.session.get("http://127.0.0.1:9/")
    with stac_api(scenes_dir) as (url, api):
        port = url.rsplit(":", 1)[1]
        api_only = RemoteSettings(policy=NetPolicy(allow=AllowList.parse(f"127.0.0.1:{port}")))
        api.items[0]["assets"]["visual"]["href"] = "http://10.0.0.1/x.tif"
        with pytest.raises(InvalidInputError, match="public"):
            find_scenes([f"{url}/search"], api_only, load_aoi(aoi_file))
