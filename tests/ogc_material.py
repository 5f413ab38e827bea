"""The official OGC API - Processes Part 1 (1.0) material, for the conformance tests: its JSON
schemas with OpenAPI 3.0 semantics, its abstract tests by conformance class, and the checks
several abstract tests share (HTML pages, the OpenAPI document's operations).

The material is looked for in ``$SANCHARI_OGC_SHARED``, then in ``../shared/ogcapi-processes-1.0``
beside the checkout; :data:`MATERIAL` is ``None`` when it is in neither (the tests skip).

Schemas are read as the standard writes them (YAML, relative ``$ref``s, OpenAPI 3.0's
``nullable`` and boolean ``exclusiveMinimum``): a ``referencing`` registry rooted at
``core/openapi/schemas`` and the OpenAPI 3.0 validator of ``openapi-schema-validator``, with
format checks. One relaxation, :data:`RELAXED`, is applied; docs/service.md says why.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
MATERIAL_NAME = "ogcapi-processes-1.0"
#: The standard's own exception types.
EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
CONFORMANCE_REL = "http://www.opengis.net/def/rel/ogc/1.0/conformance"
#: ``inputValueNoObject.yaml``'s ``oneOf`` read as ``anyOf``: its branches overlap (every
#: integer is also a ``number``; every base64 string is a ``string`` and a
#: ``binaryInputValue``), so under ``oneOf`` no integer and no base64 text is a valid value.
RELAXED = {"inputValueNoObject.yaml": ("oneOf", "anyOf")}


def find_material() -> Path | None:
    """The material's folder, or ``None`` when it is not on this machine."""
    candidates = [os.environ.get("SANCHARI_OGC_SHARED"), REPO.parent / "shared" / MATERIAL_NAME]
    for candidate in candidates:
        if candidate and (Path(candidate) / "core" / "openapi" / "schemas").is_dir():
            return Path(candidate)
    return None


MATERIAL = find_material()


class Schemas:
    """The 1.0 JSON schemas, validated with OpenAPI 3.0 semantics."""

    def __init__(self, material: Path) -> None:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        self.root = material / "core" / "openapi" / "schemas"
        resources = []
        for path in sorted(self.root.glob("*.yaml")):
            contents = yaml.safe_load(path.read_text(encoding="utf-8"))
            if path.name in RELAXED:
                old, new = RELAXED[path.name]
                contents = {new if k == old else k: v for k, v in contents.items()}
            resources.append((path.as_uri(), Resource.from_contents(contents, DRAFT4)))
        self.registry = Registry().with_resources(resources)

    def errors(self, name: str, instance: Any) -> list[str]:
        """Why ``instance`` is not valid under ``name`` (e.g. ``statusInfo.yaml``)."""
        from openapi_schema_validator import OAS30Validator, oas30_format_checker

        ref = {"$ref": (self.root / name).as_uri()}
        validator = OAS30Validator(ref, registry=self.registry, format_checker=oas30_format_checker)
        return [
            f"{name} at /{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in validator.iter_errors(instance)
        ]


@dataclass(frozen=True)
class AbstractTest:
    """One abstract test of the suite: its label, its file and its class."""

    label: str
    file: str
    conformance_class: str


def abstract_tests(material: Path) -> dict[str, list[AbstractTest]]:
    """The abstract tests of every conformance class, by class URI.

    A class is ``ATS_class_NAME.adoc`` (URI ``…/1.0/conf/NAME``: the file name, since
    ``ATS_class_html.adoc`` labels itself ``…/conf/dismiss``), with the tests it includes and
    every test in its folder ``NAME/`` (``ATS_class_core.adoc`` leaves out one of ``core/``).
    """
    folder = material / "core" / "abstract_tests"
    found: dict[str, list[AbstractTest]] = {}
    for class_file in sorted(folder.glob("ATS_class_*.adoc")):
        name = class_file.stem.removeprefix("ATS_class_")
        uri = f"http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/{name}"
        text = class_file.read_text(encoding="utf-8")
        files = set(re.findall(r"^include::(\S+?\.adoc)\[\]", text, re.M))
        files |= {f"{name}/{path.name}" for path in (folder / name).glob("ATS_*.adoc")}
        tests = []
        for include in sorted(files):
            body = (folder / include).read_text(encoding="utf-8")
            label = re.search(r"^label:: (\S+)", body, re.M)
            if label:  # a table of other tests has none
                tests.append(AbstractTest("/" + label.group(1).lstrip("/"), include, uri))
        found[uri] = tests
    return found


# -- HTML --------------------------------------------------------------------------------------
class Page(HTMLParser):
    """An HTML page's doctype, the ``href`` of its ``<a>`` elements and its text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.doctype = ""
        self.anchors: list[str] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors += [v for k, v in attrs if k == "href" and v]

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def html5(self) -> bool:
        return self.doctype.strip().lower() == "doctype html"

    def shows(self, value: Any) -> bool:
        return str(value) in " ".join(self.text)


# -- the OpenAPI document ----------------------------------------------------------------------
@dataclass
class Operations:
    """The operations of an OpenAPI document, and the answers seen for each during a walk."""

    document: dict[str, Any]
    seen: dict[tuple[str, str], set[int]] = field(default_factory=dict)

    def template(self, method: str, path: str) -> str | None:
        """The document's path template matching a concrete ``path`` (``None``: not one)."""
        exact = [p for p in self.document["paths"] if p == path]
        if exact:
            return exact[0]
        for template in self.document["paths"]:
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path) and method.lower() in self.document["paths"][template]:
                return template
        return None

    def record(self, method: str, path: str, status: int) -> None:
        template = self.template(method, path)
        key = (method.lower(), template or path)
        self.seen.setdefault(key, set()).add(status)

    def undocumented(self) -> list[str]:
        """Answers seen that the document does not describe (no code and no ``default``)."""
        missing = []
        for (method, template), statuses in sorted(self.seen.items()):
            item = self.document["paths"].get(template, {}).get(method)
            if item is None:
                missing.append(f"{method.upper()} {template}: not in the document")
                continue
            responses = item.get("responses", {})
            for status in sorted(statuses):
                if str(status) not in responses and "default" not in responses:
                    missing.append(f"{method.upper()} {template}: {status} not described")
        return missing

    def parameter(self, path: str, name: str, method: str = "get") -> dict[str, Any] | None:
        """A parameter of an operation, its ``$ref`` resolved."""
        for parameter in self.document["paths"][path][method].get("parameters", []):
            resolved = self.resolve(parameter)
            if resolved.get("name") == name:
                return resolved
        return None

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def get_operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.document["paths"].items():
            for method, operation in item.items():
                if method in ("get", "post", "put", "delete", "patch", "head"):
                    yield method, path, operation
