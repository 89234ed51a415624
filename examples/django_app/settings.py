"""The least a Django project needs to serve the stats view; merge the marked lines into yours."""

from __future__ import annotations

import os

import updater_stats

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only-for-running-the-example-locally")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "django_app.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}  # updater-stats keeps its own storage
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # stays on: only the stats view is exempt
]
USE_TZ = True

# For the stats view: Django refuses bodies over 2.5 MB by default, and a real batch can be
# several MB. Let everything up to updater-stats' own cap (16 MiB) through.
DATA_UPLOAD_MAX_MEMORY_SIZE = updater_stats.Policy().max_body_bytes
