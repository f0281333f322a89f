"""Builders the tests share (projects, templates, proxies): one place, as pre-commit's testing/fixtures.py."""
