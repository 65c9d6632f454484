"""The built seat map app, served by Django: index.html never cached, hashed assets forever."""

import gzip

import pytest
from django.test import Client

INDEX = b'<!doctype html><div id="root"></div><script src="/assets/index-Ab12_-yZ.js"></script>'


@pytest.fixture
def dist(settings, tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_bytes(INDEX)
    (tmp_path / "assets" / "index-Ab12_-yZ.js").write_text("console.log('seats')")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    settings.FRONTEND_DIST = tmp_path
    settings.WHITENOISE_ROOT = tmp_path  # read when a Client builds its middleware
    return tmp_path


@pytest.mark.parametrize("path", ["/", "/events/42/"])
def test_app_routes_get_the_index_page_uncached_with_a_csrf_cookie(dist, path):
    response = Client().get(path)

    assert response.status_code == 200
    assert response.content == INDEX
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "no-cache" in response["Cache-Control"]
    assert "csrftoken" in response.cookies  # the app's commands send it back


def test_hashed_assets_are_cached_forever(dist):
    response = Client().get("/assets/index-Ab12_-yZ.js")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"console.log('seats')"
    assert "immutable" in response["Cache-Control"]


def test_unhashed_files_are_not_cached_forever(dist):
    response = Client().get("/favicon.svg")

    assert response.status_code == 200
    assert "immutable" not in response["Cache-Control"]


def test_index_page_only_answers_reads(dist):
    assert Client().post("/").status_code == 405


def test_unbuilt_app_says_how_to_build_it(settings, tmp_path):
    settings.FRONTEND_DIST = tmp_path / "missing"
    response = Client().get("/")
    assert response.status_code == 503
    assert b"make install" in response.content


def test_assets_are_sent_compressed_to_browsers_that_accept_it(dist):
    # What `make install` does: compressed copies beside the build (smaller, or unused).
    script = b"console.log('seats');\n" * 200
    (dist / "assets" / "vendor-Zz12_-yZ.js").write_bytes(script)
    (dist / "assets" / "vendor-Zz12_-yZ.js.gz").write_bytes(gzip.compress(script))

    response = Client().get("/assets/vendor-Zz12_-yZ.js", HTTP_ACCEPT_ENCODING="gzip")

    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(response.streaming_content)) == script
