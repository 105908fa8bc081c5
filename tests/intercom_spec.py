"""Intercom's OpenAPI descriptions as test data: loading them in place, their known defects, validation.

The spec files (verbatim copies of github intercom/Intercom-OpenAPI, MIT) live in
``../shared/vendor-specs/intercom/`` next to the repository and are read in place, never copied
(``DESKPULSE_INTERCOM_SPECS`` points elsewhere). Validation uses ``openapi-schema-validator``'s OAS 3.0
dialect (``nullable``, OAS formats) over ``referencing``, so every ``$ref`` resolves inside the file.

Known defects of the descriptions (``DEFECTS``) are repaired before validating, each one narrowly and each
with the example in the same file that shows Intercom's own response breaking the schema. Validation is
otherwise as strict as the file: ``test_intercom_openapi.py`` checks that every repair is still needed (its
example fails without it) and that the examples validate with the repairs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_DIR = Path(os.environ.get("DESKPULSE_INTERCOM_SPECS")
                or Path(__file__).resolve().parents[2] / "shared" / "vendor-specs" / "intercom")
VERSIONS = ("2.11", "2.16")
JSON = "application/json"

#: The operations the connector calls (reads and write-back), as (path template, method).
CONNECTOR_OPERATIONS = (
    ("/admins", "get"),
    ("/teams", "get"),
    ("/companies/scroll", "get"),
    ("/contacts/search", "post"),
    ("/contacts/{contact_id}", "get"),
    ("/conversations/search", "post"),
    ("/conversations/{conversation_id}", "get"),
    ("/conversations/{conversation_id}", "put"),
    ("/tags", "get"),
    ("/tags", "post"),
    ("/conversations/{conversation_id}/tags", "post"),
    ("/conversations/{conversation_id}/tags/{tag_id}", "delete"),
)


@dataclass(frozen=True)
class Defect:
    """One repair of a spec file: ``kind`` is ``define`` (an undefined component), ``nullable`` (a property
    Intercom returns as null) or ``optional`` (a ``required`` entry Intercom's own example omits)."""

    version: str
    kind: str
    schema: str  # components/schemas name
    prop: str | None
    evidence: tuple[str, str, str]  # (path, method, example name) in the same file showing the defect


#: Spec defects, each shown by an example response in the same file (the evidence). Besides these, one rule
#: for both files: OAS 3.0 ignores keywords next to ``$ref``, so ``{$ref: X, nullable: true}`` (e.g.
#: ``conversation_part.assigned_to``, ``conversation.sla_applied``/``ai_agent``; 2.16 ``event_details``)
#: would reject the null the authors allowed; it is read as "X or null". Evidence: 2.11 PUT
#: /conversations/{conversation_id} "conversation found" (a part's ``assigned_to: null``); 2.16 GET
#: /conversations/{conversation_id} "conversation found" (``ai_agent: null``, ``event_details: null``).
DEFECTS = (
    # API-NOTES 6.5: the 2.11 file references custom_attributes without defining it (free-form object).
    Defect("2.11", "define", "custom_attributes", None,
           ("/conversations/{conversation_id}", "get", "conversation found")),
    # 2.11 types these conversation properties as non-nullable objects; its examples return null, in the
    # retrieved conversation and in the search results' items alike.
    *(Defect("2.11", "nullable", schema, prop, evidence)
      for schema, evidence in (("conversation", ("/conversations/{conversation_id}", "get", "conversation found")),
                               ("conversation_list_item", ("/conversations/search", "post", "successful")))
      for prop in ("conversation_rating", "teammates", "first_contact_reply", "statistics")),
    # 2.11 company_scroll.pages: the scroll's example has ``pages: null`` (2.16 makes it nullable).
    Defect("2.11", "nullable", "company_scroll", "pages", ("/companies/scroll", "get", "Successful")),
    # 2.11 ``required`` lists stricter than the examples (2.16 requires none of these).
    *(Defect("2.11", "optional", "company", prop, ("/companies/{company_id}", "get", "Successful"))
      for prop in ("last_request_at", "size", "website", "industry")),
    Defect("2.11", "optional", "admin", "job_title", ("/admins", "get", "Successful response")),
    *(Defect("2.11", "optional", "tag", prop, ("/tags", "get", "successful")) for prop in ("applied_at", "applied_by")),
)

#: Examples in the files that break their own schema in ways no response of ours may copy (wrong JSON types):
#: kept out of the examples-validate test, still parsed by the mapper test.
BROKEN_EXAMPLES = {
    ("2.16", "/conversations/{conversation_id}", "get", "conversation found"):
        "conversation_parts[].id are integers (the schema and every other example: strings)",
    ("2.16", "/conversations/{conversation_id}", "put",
     "update a conversation with an association to a custom object instance"):
        "a custom object's custom_attributes.total_amount is a number; the schema types it string",
}


def spec_path(version: str) -> Path:
    return SPEC_DIR / f"api.intercom.io.{version}.yaml"


def available() -> bool:
    return all(spec_path(v).is_file() for v in VERSIONS)


@functools.cache
def raw_spec(version: str) -> dict[str, Any]:
    """The file as published (parsed once per process: the 2.16 file is 1.3 MB)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with spec_path(version).open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader


def _nullable_ref(node: Any) -> Any:
    """``{$ref, nullable: true, ...}`` -> ``{anyOf: [{$ref}, null]}`` everywhere (new nodes, input untouched)."""
    if isinstance(node, dict):
        if "$ref" in node and node.get("nullable") is True:
            return {"anyOf": [{"$ref": node["$ref"]}, {"enum": [None]}]}
        changed = {k: _nullable_ref(v) for k, v in node.items()}
        return changed if any(changed[k] is not node[k] for k in node) else node
    if isinstance(node, list):
        items = [_nullable_ref(v) for v in node]
        return items if any(a is not b for a, b in zip(items, node, strict=True)) else node
    return node


def repaired_spec(version: str, skip: Defect | None = None) -> dict[str, Any]:
    """The spec with every defect of ``version`` repaired (except ``skip``); the parsed file is not modified."""
    spec = dict(raw_spec(version))
    components = dict(spec["components"])
    schemas = dict(components["schemas"])
    for defect in DEFECTS:
        if defect.version != version or defect == skip:
            continue
        if defect.kind == "define":
            schemas.setdefault(defect.schema, {"type": "object", "additionalProperties": True})
            continue
        schema = dict(schemas[defect.schema])
        if defect.kind == "optional":
            schema["required"] = [p for p in schema.get("required", []) if p != defect.prop]
        elif defect.kind == "nullable":
            props = dict(schema["properties"])
            prop = props[defect.prop]
            props[defect.prop] = ({"anyOf": [{"$ref": prop["$ref"]}, {"enum": [None]}]} if "$ref" in prop
                                  else {**prop, "nullable": True})
            schema["properties"] = props
        schemas[defect.schema] = schema
    components["schemas"] = schemas
    spec["components"] = components
    spec["paths"] = _nullable_ref(spec["paths"])
    spec["components"] = _nullable_ref(spec["components"])
    return spec


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class SpecValidator:
    """Validates response bodies against one (repaired) spec: ``errors(path, method, body)``."""

    def __init__(self, version: str, spec: dict[str, Any]) -> None:
        self.version = version
        self.spec = spec
        self.uri = f"urn:intercom-openapi:{version}"
        self.registry = Registry().with_resource(self.uri, Resource.from_contents(spec, default_specification=DRAFT4))
        self._validators: dict[tuple[str, str, str], OAS30Validator] = {}

    def response(self, path: str, method: str, status: str = "200") -> dict[str, Any]:
        return self.spec["paths"][path][method]["responses"][status]["content"][JSON]

    def validator(self, path: str, method: str, status: str = "200") -> OAS30Validator:
        key = (path, method, status)
        if key not in self._validators:
            self.response(path, method, status)  # KeyError when the operation has no such JSON response
            ref = f"{self.uri}#/{_pointer('paths', path, method, 'responses', status, 'content', JSON, 'schema')}"
            self._validators[key] = OAS30Validator({"$ref": ref}, registry=self.registry)
        return self._validators[key]

    def errors(self, path: str, method: str, body: Any, status: str = "200") -> list[str]:
        """Readable errors (JSON path: message), deepest first inside ``anyOf``; [] when the body conforms."""
        out = []
        for err in self.validator(path, method, status).iter_errors(body):
            leaves = _leaves(err)
            for leaf in leaves:
                where = "/".join(str(p) for p in leaf.absolute_path) or "(root)"
                out.append(f"{where}: {leaf.message[:200]}")
        return sorted(set(out))

    def examples(self, path: str, method: str, status: str = "200") -> Iterator[tuple[str, Any]]:
        """The named examples of one response (``content.application/json.examples``)."""
        try:
            content = self.response(path, method, status)
        except KeyError:
            return
        for name, example in (content.get("examples") or {}).items():
            if isinstance(example, dict) and "value" in example:
                yield name, example["value"]


def _leaves(err: Any) -> list[Any]:
    """For an ``anyOf`` failure, the errors of the branch that got furthest (not the null branch)."""
    if not err.context:
        return [err]
    branches: dict[int, list[Any]] = {}
    for sub in err.context:
        branches.setdefault(sub.schema_path[0] if sub.schema_path else 0, []).append(sub)
    best = max(branches.values(), key=lambda subs: max(len(s.absolute_path) for s in subs))
    return [leaf for sub in best for leaf in _leaves(sub)]


@functools.cache
def validator(version: str) -> SpecValidator:
    """The validator for the repaired spec of ``version`` (built once per process)."""
    return SpecValidator(version, repaired_spec(version))
