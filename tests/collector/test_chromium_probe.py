"""The Chromium probe the HTML tests rely on sees a page's errors: a script that throws and a resource that
fails to load are reported, so 'no errors' in those tests means none."""

from __future__ import annotations

from tests.collector.chromium import probe


def test_the_probe_reports_script_errors_and_missing_resources(tmp_path):
    page = ("<!DOCTYPE html><html><head></head><body><img src='missing.png'>"
            "<script>undefinedFunction()</script></body></html>")
    errors = probe(page, "<script>window.__result = {};</script>", tmp_path)["errors"]
    assert any("undefinedFunction is not defined" in e for e in errors)
    assert any("missing.png" in e for e in errors)
