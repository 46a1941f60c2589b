"""The service's name has one place per kind (issue: "a new MCP service in one command").

The template's places are the files `cargo generate` renders (`include` in cargo-generate.toml):
the crate, the Terraform variable, the collector scrape jobs, the dashboards' generator and its
outputs, the Dockerfile, the README. Anywhere else the name must be read from there, or
generation would leave a stale name behind. A generated service must carry none of the
template's names. The semantic-convention metric names (`mcp_server_operation_duration_seconds`,
`mcp_server_build_info`, ...) are not the service's name and stay.
"""
from __future__ import annotations

import re
from fnmatch import fnmatch

from identity import TEMPLATE_NAME, TEMPLATE_NAMES, identity_places, names_in
from support import ROOT, SERVICE_NAME

def test_the_service_is_named_only_in_its_one_place_per_kind():
    if not (ROOT / "cargo-generate.toml").exists():
        # A generated service: no name of the template's is left anywhere.
        assert not names_in(ROOT, TEMPLATE_NAMES)
        return
    places = identity_places(ROOT)
    # The generator's own files, and Cargo.lock, which cargo writes from the crate's name.
    allowed = [*places, "cargo-generate.toml", "generate/*", "Cargo.lock"]
    assert SERVICE_NAME == TEMPLATE_NAME
    stray = {rel: lines for rel, lines in names_in(ROOT, TEMPLATE_NAMES).items()
             if not any(fnmatch(rel, pattern) for pattern in allowed)}
    assert not stray, f"name the service from its one place per kind instead: {stray}"


def test_every_place_is_rendered_by_the_generator():
    if not (ROOT / "cargo-generate.toml").exists():
        return
    for pattern in identity_places(ROOT):
        matches = [p for p in ROOT.glob(pattern) if p.is_file()]
        assert matches, f"cargo-generate.toml includes {pattern}, which is gone"
        for path in matches:
            text = path.read_text()
            assert re.search(r"\{%-? (capture|if) ", text), f"{path}: no Liquid tag, nothing renamed"
