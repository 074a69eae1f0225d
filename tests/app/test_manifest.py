"""manifest.json is schema-valid and every handler path is a route of the app."""
import json

import pytest

from app.manifest import ManifestError, handler_paths, load_manifest


def test_manifest_is_valid_and_handlers_resolve(app):
    manifest = load_manifest()
    assert manifest["name"] == "Hub24"
    adapter = app.url_map.bind("localhost")
    for path in handler_paths(manifest):
        endpoint, _ = adapter.match(path, method="POST")
        assert endpoint, path


@pytest.mark.parametrize("broken, words", [
    ({"scopes": "crm"}, "scopes: 'crm' is not of type 'array'"),
    ({"events": [{"event": "oncrmdealadd", "handler": "/events"}]}, "does not match"),
    ({"robots": [{"code": "x", "handler": "/robots/x", "name": {"en": "X"}, "document_type": ["crm"]}]}, "too short"),
    ({"extra": 1}, "Additional properties are not allowed"),
    ({"events": [{"event": "ONCRMDEALADD", "handler": "/events"}, {"event": "ONCRMDEALADD", "handler": "/events"}]},
     "repeated event ONCRMDEALADD"),
])
def test_broken_manifest_is_refused_with_the_place(tmp_path, broken, words):
    data = {"name": "Hub24", "version": 1, "scopes": [], "events": [], "placements": [], "robots": []}
    data.update(broken)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=words):
        load_manifest(path)
