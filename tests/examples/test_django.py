"""Django specifics: CSRF is off for the stats view only, and the view takes GET and POST only."""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest

from updater_stats import MemoryBackend

from ..conftest import fixture_bytes, stored

pytest.importorskip("django")

from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path, reverse


def another_view(_request: HttpRequest) -> HttpResponse:
    return HttpResponse("one of your own views")


@pytest.fixture
def site(django_environment: None) -> Iterator[None]:
    """The example's urls next to a view of the user's own, which keeps CSRF protection."""
    from django_app import urls  # noqa: PLC0415

    urlconf = types.ModuleType("site_urls")
    urlconf.urlpatterns = [*urls.urlpatterns, path("form", another_view)]  # type: ignore[attr-defined]
    with override_settings(ROOT_URLCONF=urlconf):
        yield


def test_csrf_is_exempt_for_the_stats_view_only(site: None, storage: MemoryBackend) -> None:
    client = Client(enforce_csrf_checks=True)  # the test client skips CSRF checks otherwise

    stats = client.post("/stats", data=fixture_bytes("ios_batch"), content_type="application/json")
    form = client.post("/form", data=b"{}", content_type="application/json")

    assert stats.status_code == 200
    assert len(stored(storage)) == 3
    assert form.status_code == 403


def test_the_view_has_a_name_and_answers_get_and_post_only(
    django_environment: None, storage: MemoryBackend
) -> None:
    client = Client()

    assert reverse("updater-stats") == "/stats"
    assert client.put("/stats", data=b"[]", content_type="application/json").status_code == 405
    assert client.delete("/stats").status_code == 405
    assert stored(storage) == []
