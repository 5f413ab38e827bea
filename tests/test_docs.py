"""The docs beside the code: every link resolves, the site builds, the README stays short.

MkDocs checks links between pages of ``docs/``; it cannot check links to files outside it
(``/weights/MODEL_CARD.md``, written from the repository root) nor the README's and
CONTRIBUTING's links, so this does, anchors included. An anchor must be one both GitHub and
MkDocs give the heading, so a link works on the repository's pages and on the site alike.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import unicodedata
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Markdown files whose links are checked (docs/ pages, plus the ones at the root and beside data).
PAGES = sorted(
    {
        *ROOT.glob("*.md"),
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "weights").glob("*.md"),
        *(ROOT / "geotiffs").glob("*.md"),
    }
)
README_MAX_LINES = 250

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def _heading_text(raw: str) -> str:
    """A heading as it renders: code spans unwrapped, links to their text, no emphasis marks."""
    text = _CODE_SPAN.sub(lambda m: m.group(2).strip(), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return text.replace("**", "").replace("*", "")


def github_slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def mkdocs_slug(text: str) -> str:
    """Python-Markdown's ``toc`` anchor (MkDocs' default): ASCII; spaces and hyphens one ``-``."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


@cache
def anchors(page: Path) -> frozenset[str]:
    """The anchors both GitHub and MkDocs give ``page``'s headings (duplicates numbered)."""
    github: dict[str, int] = {}
    mkdocs: dict[str, int] = {}
    found_github, found_mkdocs = set(), set()
    for _, line in _prose_lines(page.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        text = _heading_text(match.group(2))
        for slug, seen, found, sep in (
            (github_slug(text), github, found_github, "-"),
            (mkdocs_slug(text), mkdocs, found_mkdocs, "_"),
        ):
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}{sep}{count}")
    return frozenset(found_github & found_mkdocs)


def links(page: Path) -> list[tuple[int, str]]:
    """Every link target of ``page`` outside code, with its line number."""
    found = []
    for number, line in _prose_lines(page.read_text(encoding="utf-8")):
        line = _CODE_SPAN.sub("code", line)
        targets = [m.group(1) for m in _INLINE_LINK.finditer(line)]
        reference = _REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
        found.extend((number, target) for target in targets)
    return found


def _display(page: Path) -> str:
    return str(page.relative_to(ROOT)) if ROOT in page.parents else str(page)


def broken_links(page: Path) -> list[str]:
    """What is wrong with ``page``'s local links (empty when every one resolves)."""
    problems = []
    for number, target in links(page):
        if _SCHEME.match(target):
            continue  # http(s), mailto: not checked offline
        path_part, _, anchor = target.partition("#")
        if not path_part:
            resolved = page
        elif path_part.startswith("/"):
            resolved = ROOT / path_part.lstrip("/")
        else:
            resolved = (page.parent / path_part).resolve()
        where = f"{_display(page)}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where}: no such file")
        elif path_part and ROOT not in resolved.resolve().parents:
            problems.append(f"{where}: outside the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where}: no heading with that anchor on GitHub and MkDocs alike")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_the_pages_are_there() -> None:
    names = {str(p.relative_to(ROOT)) for p in PAGES}
    assert {"README.md", "CONTRIBUTING.md", "CHANGELOG.md", "docs/index.md"} <= names


def test_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/"


def test_slugs_follow_github_and_mkdocs() -> None:
    heading = _heading_text("The OGC API – Processes `service`")
    assert github_slug(heading) == "the-ogc-api--processes-service"
    assert mkdocs_slug(heading) == "the-ogc-api-processes-service"
    assert github_slug(_heading_text("Speed (CPU)")) == mkdocs_slug("Speed (CPU)") == "speed-cpu"


def test_broken_links_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](#title) [ok](/README.md#test) [ok](https://example.org/x)\n"
        "[bad](#nothing) [bad](/no-such-file.md) [bad](/README.md#no-such-heading)\n"
        "`[not a link](nowhere.md)`\n\n```\n[not a link](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "#nothing: no heading with that anchor on GitHub and MkDocs alike",
        "/no-such-file.md: no such file",
        "/README.md#no-such-heading: no heading with that anchor on GitHub and MkDocs alike",
    ]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed")
def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "index.html").is_file()
