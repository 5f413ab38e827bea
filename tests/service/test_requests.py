"""How execute requests ask for results, and the raw/document answers (no server needed)."""

from __future__ import annotations

import email.policy
import json
from email.parser import BytesParser
from pathlib import Path

import pytest

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.netguard import AllowList, NetPolicy
from sanchari_processes.results import COG, GEOJSON, GPKG, OUTPUTS
from sanchari_processes.service.requests import (
    ResultFile,
    execution_from_dict,
    parse_execution,
    results_answer,
)

POLICY = NetPolicy()
BASE = "http://server"


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, ResultFile]:
    (tmp_path / "roads.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": []})
    )
    (tmp_path / "mask.tif").write_bytes(b"II*\x00tiff")
    return {
        "roads": ResultFile(tmp_path / "roads.geojson", GEOJSON),
        "mask": ResultFile(tmp_path / "mask.tif", COG),
    }


def test_no_outputs_means_all_by_value() -> None:
    execution = parse_execution({}, POLICY)
    assert [o.id for o in execution.outputs] == list(OUTPUTS)
    assert not execution.by_reference and execution.response == "raw"


def test_formats_modes_and_a_round_trip() -> None:
    body = {
        "outputs": {
            "roads": {
                "transmissionMode": "reference",
                "format": {"mediaType": "application/x-sqlite3"},
            },
            "mask": {"format": {"mediaType": "image/tiff; application=geotiff"}},
        },
        "response": "document",
        "subscriber": {"successUri": "https://hooks.example.org/done"},
    }
    execution = parse_execution(body, POLICY)
    assert execution.files() == (("roads", GPKG), ("mask", COG))
    assert execution.by_reference and execution.subscriber.success_uri.endswith("/done")
    assert execution_from_dict(execution.to_dict(), POLICY) == execution
    assert execution_from_dict(None, POLICY).files() == (("roads", GEOJSON),)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"outputs": {"lanes": {}}}, "unknown output 'lanes'"),
        ({"outputs": {"roads": {"transmissionMode": "inline"}}}, "transmissionMode"),
        ({"outputs": {"roads": {"format": {"mediaType": "text/csv"}}}}, "not produced"),
        ({"outputs": {"roads": {"schema": {}}}}, "unknown member"),
        ({"outputs": []}, "object keyed by output id"),
        ({"response": "html"}, "'response'"),
        ({"subscriber": {"inProgressUri": "https://x.org"}}, "needs 'successUri'"),
        ({"subscriber": {"successUri": "ftp://x.org"}}, "only http"),
        ({"subscriber": {"successUri": "http://127.0.0.1:9/cb"}}, "not a public"),
        ({"subscriber": {"successUri": "http://169.254.169.254/"}}, "not a public"),
        ({"subscriber": {"successUri": "https://x.org", "other": "y"}}, "unknown member"),
    ],
)
def test_bad_execution_members_are_400(body: dict, words: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_execution(body, POLICY)
    assert words in err.value.message


def test_allow_list_admits_a_private_callback() -> None:
    policy = NetPolicy(allow=AllowList.parse("127.0.0.1"))
    execution = parse_execution({"subscriber": {"successUri": "http://127.0.0.1:9/cb"}}, policy)
    assert execution.subscriber is not None


def test_answers(files: dict[str, ResultFile]) -> None:
    one = parse_execution({"outputs": {"roads": {}}}, POLICY)
    answer = results_answer(one, files, BASE, "j")
    assert answer.status == 200 and answer.headers["Content-Type"] == GEOJSON

    refs = parse_execution({"outputs": {"mask": {"transmissionMode": "reference"}}}, POLICY)
    answer = results_answer(refs, files, BASE, "j")
    assert answer.status == 204 and answer.body == b""
    assert answer.headers["Link"].startswith("<http://server/jobs/j/results/mask>;")

    doc = parse_execution({"outputs": {"roads": {}, "mask": {}}, "response": "document"}, POLICY)
    document = json.loads(results_answer(doc, files, BASE, "j").body)
    assert document["roads"]["value"]["type"] == "FeatureCollection"
    assert document["mask"] == {"value": "SUkqAHRpZmY=", "mediaType": COG, "encoding": "base64"}

    mixed = parse_execution(
        {"outputs": {"roads": {}, "mask": {"transmissionMode": "reference"}}}, POLICY
    )
    answer = results_answer(mixed, files, BASE, "j")
    assert results_answer(mixed, files, BASE, "j") == answer  # the same bytes every time
    assert answer.headers["Content-Type"].startswith("multipart/related; boundary=")
    assert b"Content-ID: <roads>" in answer.body and b"FeatureCollection" in answer.body
    head = f"Content-Type: {answer.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + answer.body)
    parts = {part["Content-ID"]: part for part in message.iter_parts()}
    assert parts["<roads>"].get_content_type() == "application/geo+json"
    assert parts["<mask>"]["Content-Location"] == "http://server/jobs/j/results/mask"
    assert parts["<mask>"].get_payload(decode=True) == b""  # a reference part is empty

    with pytest.raises(FileNotFoundError):
        results_answer(parse_execution({}, POLICY), files, BASE, "j")  # preview not written
