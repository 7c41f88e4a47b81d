"""The admin in a real browser: headless Debian Chromium driven by Selenium,
against gunicorn serving a committed scratch database.

Staff log in (password and the authenticator's code: the staff user is enrolled
by `manage.py enroll_staff_otp`, and the code computed from the seed its
provisioning URI prints), create a tenant, add a user to it, suspend the tenant,
and the user's token (issued before the suspension) is refused with 403 on its
next call. The password alone does not get in.
`scripts/browser-deps.sh` (run by `make test`) installs chromium and
chromium-driver when they are missing. The API docs page (Swagger UI) renders
its operations in a browser with no internet: its assets are the project's
own. UPDATE_SCREENSHOTS=1 refreshes docs/img/admin-tenants.png and
docs/img/api-docs.png from this run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.support.scratch import ROOT, free_port, gunicorn, manage, scratch_database
from tests.support.staff import current_code, seed_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
STAFF_PASSWORD = "browser-test-staff-pw"
USER_PASSWORD = "gavin-belson-secret"


@pytest.fixture(scope="module")
def staff_seed(server_database) -> bytes:
    """What the staff member's authenticator app holds: the seed of the URI the command printed."""
    printed = manage(server_database, "enroll_staff_otp", "staff", "--no-qr").stdout
    (uri,) = [line for line in printed.splitlines() if line.startswith("otpauth://totp/")]
    return seed_of(uri)


@pytest.fixture(scope="module")
def server_database():
    with scratch_database("alphapulse_browser") as name:
        manage(name, "migrate")
        manage(name, "load_demo", "--trades", "20", ADMIN_USERNAME="staff", ADMIN_PASSWORD=STAFF_PASSWORD)
        yield name


@pytest.fixture(scope="module")
def server(server_database):
    with gunicorn(server_database, workers=1, threads=4) as base:
        yield base


def chromium(profile: Path, *flags: str) -> webdriver.Chrome:
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "chromium and chromium-driver are missing: run scripts/browser-deps.sh (make test does)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1440,800",
        f"--user-data-dir={profile}",
        *flags,
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def offline_browser(tmp_path_factory):
    """A browser with no internet: every request but loopback goes to a proxy on a dead port."""
    dead_port = free_port()  # bound and released: nothing listens there
    driver = chromium(
        tmp_path_factory.mktemp("chromium-offline-profile"),
        f"--proxy-server=http://127.0.0.1:{dead_port}",
        # Only the server under test is reached directly ("<-loopback>" stops
        # Chromium's implicit loopback bypass; 127.0.0.1 is then listed alone).
        "--proxy-bypass-list=<-loopback>;127.0.0.1",
    )
    yield driver
    driver.quit()


def fill(browser, field_id: str, value: str) -> None:
    element = browser.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(value)


def save(browser) -> None:
    browser.find_element(By.NAME, "_save").click()


def success_message(browser) -> str:
    return browser.find_element(By.CSS_SELECTOR, "ul.messagelist li.success").text


def log_in(browser, server: str, code: str) -> None:
    browser.get(f"{server}/admin/login/?next=/admin/")
    fill(browser, "id_username", "staff")
    fill(browser, "id_password", STAFF_PASSWORD)
    fill(browser, "id_otp_token", code)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()


def test_the_staff_password_alone_does_not_get_in(server, staff_seed, browser):
    browser.delete_all_cookies()
    log_in(browser, server, code="")
    error = browser.find_element(By.CSS_SELECTOR, ".errornote")  # waits for the answer page
    assert "Please enter your OTP token" in error.text
    browser.get(f"{server}/admin/")
    assert browser.find_element(By.ID, "login-form")  # still not logged in


def test_staff_create_tenant_add_user_suspend_and_the_token_stops_working(server, staff_seed, browser, tmp_path):
    browser.delete_all_cookies()
    log_in(browser, server, code=current_code(staff_seed))
    assert browser.find_element(By.ID, "user-tools").text.lower().startswith("welcome, staff"), browser.title

    browser.get(f"{server}/admin/tenants/tenant/add/")
    fill(browser, "id_name", "Hooli XYZ")
    fill(browser, "id_slug", "hooli")
    Select(browser.find_element(By.ID, "id_subscription_tier")).select_by_value("enterprise")
    save(browser)
    assert "was added successfully" in success_message(browser)

    browser.get(f"{server}/admin/tenants/user/add/")
    Select(browser.find_element(By.ID, "id_tenant")).select_by_visible_text("Hooli XYZ (hooli)")
    fill(browser, "id_username", "gavin")
    fill(browser, "id_email", "gavin@hooli.example")
    fill(browser, "id_password1", USER_PASSWORD)
    fill(browser, "id_password2", USER_PASSWORD)
    save(browser)
    assert "was added successfully" in success_message(browser)

    login = httpx.post(
        f"{server}/api/auth/token/", json={"tenant": "hooli", "username": "gavin", "password": USER_PASSWORD}
    )
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['access']}"}
    assert httpx.get(f"{server}/api/trades/", headers=bearer).status_code == 200

    browser.get(f"{server}/admin/tenants/tenant/?q=hooli")
    row = browser.find_element(By.XPATH, "//tr[.//a[text()='Hooli XYZ']]")
    row.find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("suspend")
    browser.find_element(By.NAME, "index").click()
    assert "Suspended 1 tenant(s)." in success_message(browser)

    refused = httpx.get(f"{server}/api/trades/", headers=bearer)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Tenant 'hooli' is suspended."}

    browser.get(f"{server}/admin/tenants/tenant/")
    assert httpx.get(f"{server}/static/admin/css/base.css").status_code == 200, "run collectstatic (make setup does)"
    listing = browser.find_element(By.ID, "result_list").text
    assert "Hooli XYZ" in listing and "Acme" in listing
    shot = tmp_path / "admin-tenants.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, ROOT / "docs" / "img" / "admin-tenants.png")


def test_a_tenant_user_cannot_log_in_to_the_admin(server, browser):
    browser.delete_all_cookies()
    browser.get(f"{server}/admin/login/")
    fill(browser, "id_username", "alice")
    fill(browser, "id_password", "alphapulse-demo")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    error = browser.find_element(By.CSS_SELECTOR, ".errornote")  # waits for the answer page
    assert "Please enter the correct username and password" in error.text
    browser.get(f"{server}/admin/")
    assert browser.find_element(By.ID, "login-form")  # still not logged in


def test_api_docs_render_every_operation_with_no_internet(server, offline_browser, tmp_path):
    # The page's own scripts must come from the project: a CDN is unreachable here.
    with pytest.raises(WebDriverException, match="ERR_PROXY_CONNECTION_FAILED"):
        offline_browser.get("https://cdn.jsdelivr.net/npm/swagger-ui-dist/swagger-ui.css")

    offline_browser.get(f"{server}/api/docs/")
    source = offline_browser.page_source
    assert "cdn.jsdelivr.net" not in source and "unpkg.com" not in source
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in source
    operations = offline_browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")  # waits for the render
    paths = {element.text.replace("\u200b", "") for element in operations}
    assert {"/api/trades/", "/api/orders/{id}/", "/api/auth/token/"} <= paths, paths
    shot = tmp_path / "api-docs.png"
    assert offline_browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, ROOT / "docs" / "img" / "api-docs.png")
