"""Metabase's first-time setup, done by API so `docker compose up` needs no clicking."""

from __future__ import annotations

import time

import requests

from dashboards.provision import MetabaseError


def wait_until_healthy(url: str, timeout_s: float = 300, interval_s: float = 3) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{url}/api/health", timeout=5)
            if response.ok and response.json().get("status") == "ok":
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(interval_s)
    raise MetabaseError(f"Metabase at {url} was not healthy after {timeout_s:.0f} s ({last})")


def complete_setup(url: str, email: str, password: str, site_name: str = "StorePulse") -> bool:
    """Create the admin user if Metabase has none yet; False when it was already set up."""
    properties = requests.get(f"{url}/api/session/properties", timeout=10).json()
    if properties.get("has-user-setup"):
        return False
    response = requests.post(f"{url}/api/setup", timeout=30, json={
        "token": properties["setup-token"],
        "user": {"email": email, "password": password, "first_name": "StorePulse",
                 "last_name": "Admin", "site_name": site_name},
        "prefs": {"site_name": site_name, "site_locale": "en", "allow_tracking": False},
    })
    if not response.ok:
        raise MetabaseError(f"Metabase setup failed: HTTP {response.status_code}: "
                            f"{response.text[:300]}")
    return True
