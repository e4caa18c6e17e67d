"""Fixtures of the store-page tests: a page on a real SQLite database and an HTTP client."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from helpers.webkit import page_context


@pytest.fixture
def page(tmp_path):
    """``(ctx, client)``: the page on ``tmp_path/store.db`` with mara/ali/tess accounts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient
    from storeedge.server.web.app import create_app

    ctx = page_context(f"sqlite:///{tmp_path}/store.db")
    with TestClient(create_app(ctx), follow_redirects=True) as client:
        yield ctx, client
    ctx.store.db.close()
