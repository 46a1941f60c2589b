"""The AWS provider's schema, offline: the arguments and blocks of every resource, data source and
the provider block, with which are required, as the provider's generated CDK bindings describe
them.

No Terraform provider can be downloaded here, but the bindings on the npm registry are generated
from the provider's own schema, and their jsii assembly (`.jsii`, JSON) keeps, for each struct,
every property with its optionality and its Terraform name (the registry link in its doc), and
says "<name> block." for blocks. `install()` packs the pinned bindings, extracts the assembly
and keeps only a compact schema in the cache; scripts/bootstrap.sh runs it.

Schema: {"resource"|"data"|"provider": {type: struct name}, "structs": {struct name: {"attributes":
{name: required}, "blocks": {name: {"required": bool, "struct": struct name, or None where the
bindings type the block `any`}}}}}.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# Generated from hashicorp/aws 6.66.0 (its package.json says which; versions.tf asks for ~> 6.0).
BINDINGS = "@cdktn/provider-aws@25.7.0"
INTEGRITY = "sha512-E/nhu0yVZE4mXMgIPuI8tEFt1BExLkA7ARjihdG+/HmfDfzLr+OEF3dkFRvI6glRt30lrrBWQLwXqCJBxcmyUg=="

CACHE = Path(os.environ.get("MCP_CACHE", Path.home() / ".cache/mcp-platform"))
# Named after the bindings and this file's schema layout, so a change of either rebuilds it.
SCHEMA = CACHE / f"provider-aws-schema-{BINDINGS.rsplit('@', 1)[1]}-v2.json"

_REPRESENTS = re.compile(r"docs(?:/(resources|data-sources)/\w+)? (aws(?:_\w+)?)\}")
_TF_NAME = re.compile(r"#(\w+) \w+#\w+\}")


def _tf_name(prop: dict) -> str:
    """The registry link's anchor (it keeps names the bindings rename), else the snake case."""
    docs = prop.get("docs", {})
    found = _TF_NAME.search(docs.get("summary", "") + " " + docs.get("remarks", ""))
    return found.group(1) if found else re.sub(r"(?<!^)([A-Z])", r"_\1", prop["name"]).lower()


def _struct_fqn(ptype: dict) -> str | None:
    """The struct a property holds: itself, a list of it, or a union with IResolvable."""
    if "fqn" in ptype:
        return ptype["fqn"]
    if "collection" in ptype:
        return _struct_fqn(ptype["collection"]["elementtype"])
    for member in ptype.get("union", {}).get("types", []):
        fqn = _struct_fqn(member)
        if fqn and not fqn.startswith("cdktn."):
            return fqn
    return None


def _structs(types: dict, roots: list[str]) -> dict[str, dict]:
    """Every struct reachable from the roots, by name (some nest themselves)."""
    structs: dict[str, dict] = {}
    pending = list(roots)
    while pending:
        fqn = pending.pop()
        if fqn in structs:
            continue
        attributes, blocks = {}, {}
        for prop in types[fqn].get("properties", []):
            name = _tf_name(prop)
            required = not prop.get("optional", False)
            if prop.get("docs", {}).get("summary", "").endswith(" block."):
                # Deeply recursive blocks (wafv2 statements) are typed `any`: unchecked inside.
                inner = _struct_fqn(prop["type"])
                blocks[name] = {"required": required, "struct": inner}
                if inner:
                    pending.append(inner)
            else:
                attributes[name] = required
        structs[fqn] = {"attributes": attributes, "blocks": blocks}
    return structs


def build(assembly: dict, provider_version: str) -> dict:
    types = assembly["types"]
    schema: dict = {"provider_version": provider_version, "resource": {}, "data": {}, "provider": {}}
    for spec in types.values():
        represents = _REPRESENTS.search(spec.get("docs", {}).get("summary", ""))
        if spec.get("kind") != "class" or not represents:
            continue
        [config] = [p for p in spec["initializer"]["parameters"] if p["name"] == "config"]
        kind = {"resources": "resource", "data-sources": "data", None: "provider"}[represents.group(1)]
        schema[kind][represents.group(2)] = config["type"]["fqn"]
    schema["structs"] = _structs(types, [fqn for kind in ("resource", "data", "provider")
                                         for fqn in schema[kind].values()])
    return schema


def install() -> Path:
    """Packs the pinned bindings (npm checks the registry's digest; we check the pinned one) and
    keeps the compact schema. Idempotent."""
    if SCHEMA.exists():
        return SCHEMA
    with tempfile.TemporaryDirectory() as tmp:
        packed = json.loads(subprocess.run(
            ["npm", "pack", "--json", "--silent", BINDINGS], cwd=tmp, check=True,
            capture_output=True, text=True, timeout=600).stdout)
        [tarball] = packed
        assert tarball["integrity"] == INTEGRITY, f"{BINDINGS}: integrity {tarball['integrity']}"
        with tarfile.open(Path(tmp) / tarball["filename"]) as archive:
            assembly = json.load(archive.extractfile("package/.jsii"))
            package = json.load(archive.extractfile("package/package.json"))
    schema = build(assembly, package["cdktn"]["provider"]["version"])
    SCHEMA.parent.mkdir(parents=True, exist_ok=True)
    partial = SCHEMA.with_suffix(".partial")
    partial.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True))
    partial.replace(SCHEMA)
    return SCHEMA


# Terraform's own meta-arguments and blocks, valid in every resource or data block.
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner",
                  "connection"}


class ProviderSchema:
    def __init__(self, schema: dict):
        self.schema = schema

    @classmethod
    def load(cls) -> "ProviderSchema":
        return cls(json.loads(install().read_text()))

    def problems(self, kind: str, rtype: str, body: dict) -> list[str]:
        """Unknown arguments, missing required ones, and blocks written as attributes or the
        other way round, in one parsed (explicit_blocks) `resource`, `data` or `provider` body."""
        where = {"resource": rtype, "data": f"data.{rtype}", "provider": f"provider.{rtype}"}[kind]
        if rtype not in self.schema[kind]:
            return [f"{where}: no such {kind} in provider {self.schema['provider_version']}"]
        return self._check(body, self.schema[kind][rtype], where, top=True)

    def _check(self, body: dict, struct_name: str | None, where: str, top: bool) -> list[str]:
        if struct_name is None:
            return []
        struct = self.schema["structs"][struct_name]
        blocks = struct["blocks"]
        found: list[str] = []
        given: set[str] = set()
        for key, value in body.items():
            if key == "__is_block__" or (top and key in META_ARGUMENTS):
                continue
            if key == "dynamic":
                for dynamic in value:
                    for name, spec in dynamic.items():
                        if name == "__is_block__":
                            continue
                        given.add(name)
                        if name not in blocks:
                            found.append(f"{where}: dynamic {name!r} is not a block")
                            continue
                        for content in spec.get("content", []):
                            found += self._check(content, blocks[name]["struct"],
                                                 f"{where}.{name}", top=False)
                continue
            given.add(key)
            is_block = isinstance(value, list) and bool(value) and all(
                isinstance(v, dict) and v.get("__is_block__") for v in value)
            if key in blocks:
                if not is_block:
                    found.append(f"{where}: {key} is a block, written as an attribute")
                    continue
                for item in value:
                    found += self._check(item, blocks[key]["struct"], f"{where}.{key}", top=False)
            elif key in struct["attributes"]:
                if is_block:
                    found.append(f"{where}: {key} is an attribute, written as a block")
            else:
                found.append(f"{where}: unknown argument or block {key!r}")
        missing = [n for n, required in struct["attributes"].items() if required] + \
                  [n for n, spec in blocks.items() if spec["required"]]
        found += [f"{where}: missing required {n!r}" for n in missing if n not in given]
        return found


if __name__ == "__main__":
    # scripts/bootstrap.sh: `python e2e/infra_schema.py install`
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: infra_schema.py install")
    print(install())
