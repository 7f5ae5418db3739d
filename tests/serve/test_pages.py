"""The pages over HTTP (no browser): CSP and framing, sign-in and its CSRF defences, the
cookie's flags, static files from the package, escaping in the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graph.api.app import create_app
from graph.api.auth import SESSION_COOKIE
from graph.api.pages import routes
from graph.api.pages.dashboard import dashboard
from tests.fakes import price, route, scripted_llm
from tests.serve.conftest import MANAGER_TOKEN

PAGES_DIR = Path(routes.__file__).parent
SAME = {"Origin": "http://testserver"}


def sign_in(api, token: str = MANAGER_TOKEN, next_page: str = "/manager", **headers):
    return api.client.post(
        "/signin",
        data={"token": token, "next": next_page},
        headers={**SAME, **headers},
        follow_redirects=False,
    )


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert m, html[:500]
    return m.group(1)


@pytest.mark.parametrize("path", ["/", "/manager", "/analyst"])
def test_pages_carry_a_strict_content_security_policy(make_api, path) -> None:
    api = make_api(scripted_llm())
    r = api.client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'self'" in csp and "base-uri 'none'" in csp
    assert "form-action 'self'" in csp and "object-src 'none'" in csp
    if path == "/":
        assert "frame-ancestors 'self' https://shop.example" in csp  # SGR_ALLOWED_ORIGINS
        assert "x-frame-options" not in r.headers
    else:
        assert "frame-ancestors 'none'" in csp and r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_an_origin_that_is_not_one_is_not_put_into_the_policy(make_api) -> None:
    api = make_api(scripted_llm(), allowed_origins="https://ok.example,https://x; script-src *")
    csp = api.client.get("/").headers["content-security-policy"]
    assert "frame-ancestors 'self' https://ok.example" in csp and "script-src *" not in csp


def test_no_inline_script_or_handler_in_any_page_or_template(make_api) -> None:
    api = make_api(scripted_llm())
    assert sign_in(api).status_code == 303
    html = [api.client.get(p).text for p in ("/", "/manager", "/analyst")]
    api.client.cookies.clear()
    html.append(api.client.get("/manager").text)  # the sign-in form
    html += [p.read_text() for p in (PAGES_DIR / "templates").glob("*.html")]
    for text in html:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), text[:200]
        assert not re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE)
        assert "style=" not in text and "<style" not in text
        assert "javascript:" not in text.lower()
    for script in (PAGES_DIR / "static").glob("*.js"):
        code = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, (script.name, sink)


def test_static_files_are_served_from_the_package(make_api) -> None:
    api = make_api(scripted_llm())
    for name, kind in (
        ("embed.js", "javascript"),
        ("widget.js", "javascript"),
        ("inbox.js", "javascript"),
        ("pages.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ):
        assert (PAGES_DIR / "static" / name).is_file()
        r = api.client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name
    assert (PAGES_DIR / "README.md").is_file()
    assert api.client.get("/static/../routes.py").status_code == 404


def test_staff_pages_show_the_sign_in_form_until_signed_in(make_api) -> None:
    api = make_api(scripted_llm())
    for path in ("/manager", "/analyst"):
        r = api.client.get(path)
        assert '<label for="token">Token</label>' in r.text and ">Sign in</button>" in r.text
        assert "csrf-token" not in r.text
    bad = sign_in(api, token="wrong")
    assert bad.status_code == 401 and "That token is not valid." in bad.text
    assert SESSION_COOKIE not in bad.headers.get("set-cookie", "")
    api.client.cookies.set(SESSION_COOKIE, "forged")
    bogus_cookie = api.client.get("/manager")
    assert "Sign in" in bogus_cookie.text and "csrf-token" not in bogus_cookie.text


def test_sign_in_sets_a_strict_http_only_cookie(make_api) -> None:
    api = make_api(scripted_llm())
    r = sign_in(api, next_page="/analyst")
    assert r.status_code == 303 and r.headers["location"] == "/analyst"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=28800"):
        assert flag in cookie, cookie
    assert "Secure" not in cookie  # plain http (a test server): browsers would drop it
    page = api.client.get("/analyst")
    assert "Discounts dashboard" in page.text and "Signed in as <strong>alice</strong>" in page.text


def test_the_cookie_is_secure_over_https(make_api) -> None:
    api = make_api(scripted_llm())
    with TestClient(create_app(services=api.services), base_url="https://testserver") as tls:
        r = tls.post(
            "/signin",
            data={"token": MANAGER_TOKEN, "next": "/manager"},
            headers={"Origin": "https://testserver"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
    behind_proxy = sign_in(api, **{"X-Forwarded-Proto": "https"})
    assert "Secure" in behind_proxy.headers["set-cookie"]


def test_sign_in_only_from_this_sites_own_page(make_api) -> None:
    api = make_api(scripted_llm())
    evil = sign_in(api, Origin="https://evil.example")
    assert evil.status_code == 403 and "set-cookie" not in evil.headers
    none = api.client.post(
        "/signin", data={"token": MANAGER_TOKEN, "next": "/manager"}, follow_redirects=False
    )
    assert none.status_code == 403  # neither Origin nor Referer
    null_origin = sign_in(api, Origin="null", Referer="http://testserver/manager")
    assert null_origin.status_code == 303  # Origin null: the Referer decides
    bad_referer = sign_in(api, Origin="null", Referer="https://evil.example/manager")
    assert bad_referer.status_code == 403
    proxied = sign_in(api, Origin="https://agent.example", **{"X-Forwarded-Host": "agent.example"})
    assert proxied.status_code == 303


def test_sign_in_never_redirects_off_site(make_api) -> None:
    api = make_api(scripted_llm())
    for target in ("https://evil.example/", "//evil.example", "/v1/report", ""):
        assert sign_in(api, next_page=target).headers["location"] == "/manager"


def test_cookie_calls_need_the_pages_csrf_token(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(19)))
    api.turn("c1", "Give me a discount or I leave")
    sign_in(api)
    csrf = csrf_of(api.client.get("/manager").text)
    assert [a["session"] for a in api.client.get("/v1/approvals").json()] == ["c1"]
    body = {"decision": "approve", "percent": 15}
    missing = api.client.post("/v1/approvals/c1", json=body)
    assert missing.status_code == 403 and "CSRF" in missing.json()["error"]
    wrong = api.client.post("/v1/approvals/c1", json=body, headers={"X-CSRF-Token": "x" + csrf})
    assert wrong.status_code == 403
    done = api.client.post("/v1/approvals/c1", json=body, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200 and done.json()["offer"]["discount_percent"] == 15
    # the analyst page's token is the same sign-in's
    assert csrf_of(api.client.get("/analyst").text) == csrf


def test_sign_out_needs_the_csrf_token_and_clears_the_cookie(make_api) -> None:
    api = make_api(scripted_llm())
    sign_in(api)
    csrf = csrf_of(api.client.get("/manager").text)
    refused = api.client.post("/signout", data={"csrf": "nope"}, headers=SAME)
    assert refused.status_code == 403
    r = api.client.post(
        "/signout", data={"csrf": csrf, "next": "/analyst"}, headers=SAME, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/analyst"
    assert (
        f'{SESSION_COOKIE}=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    )
    assert "Sign in" in api.client.get("/manager").text


def test_the_dashboard_renders_the_report_and_refuses_a_bad_date(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(5), route("accept_offer")))
    api.turn("r1", "discount please")
    api.turn("r1", "I accept")
    sign_in(api)
    page = api.client.get("/analyst").text
    assert page.count("<svg") >= 4 and 'data-chart="churn-given"' in page
    assert 'data-chart="per-day-offers"' in page and 'class="col col-issued"' in page
    assert re.search(r"<dt>Offers issued</dt>\s*<dd class=\"tile-value\">1</dd>", page)
    assert 'href="/v1/report.csv"' in page and ">CSV</a>" in page
    filtered = api.client.get("/analyst?since=2020-01-01").text
    assert 'href="/v1/report.csv?since=2020-01-01"' in filtered
    assert 'value="2020-01-01"' in filtered
    bad = api.client.get("/analyst?since=yesterday")
    assert bad.status_code == 400 and "is not an ISO date" in bad.text and "<svg" in bad.text


def test_dashboard_labels_are_escaped_in_the_svg_and_tables() -> None:
    evil = "<script>alert(1)</script>"
    group = {
        "offers_issued": 2,
        "accepted": 1,
        "acceptance_rate": 0.5,
        "avg_discount_percent": 10.0,
        "avg_cap_percent": 20.0,
        "discount_given_total": 24.0,
    }
    report = {
        "offers_issued": 2,
        "offers_accepted": 1,
        "by_churn_band": {evil: group},
        "by_inventory": {"Normal": group},
        "approvals": {"approved": 1},
        "timeline": [
            {
                "day": "2026-11-30",
                "issued": 2,
                "accepted": 1,
                "discount_given": 24.0,
                "approved": 1,
                "rejected": 0,
                "pending": 0,
            },
            {
                "day": "2026-12-02",
                "issued": 1,
                "accepted": 0,
                "discount_given": 0.0,
                "approved": 0,
                "rejected": 1,
                "pending": 1,
            },
        ],
    }
    view = dashboard(report, "")
    assert [d["day"] for d in view["days"]] == ["2026-11-30", "2026-12-01", "2026-12-02"]
    assert view["sections"][0].rows[0].discount_to_cap == "50%"
    html = routes.TEMPLATES.get_template("analyst.html").render(
        view=view,
        error="",
        root="",
        shop_name="<b>shop</b>",
        who=type("Who", (), {"name": "<i>x</i>"})(),
        csrf="c",
        page_id="analyst",
    )
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>shop</b>" not in html and "<i>x</i>" not in html


def test_the_csv_fills_accepted_and_discount_to_cap_per_group(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(5), route("accept_offer")))
    api.turn("v1", "discount please")
    api.turn("v1", "I accept")
    lines = api.client.get("/v1/report.csv", headers=api.manager()).text.splitlines()
    band = next(line for line in lines if line.startswith("by_churn_band,high,"))
    assert band.split(",")[2:4] == ["1", "1"] and band.split(",")[6] == "0.25"  # 5% of a 20% cap


def test_a_form_with_too_many_fields_is_refused_not_an_error(make_api) -> None:
    api = make_api(scripted_llm())
    body = "&".join(f"f{i}=x" for i in range(20)) + f"&token={MANAGER_TOKEN}"
    r = api.client.post(
        "/signin",
        content=body,
        headers={**SAME, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 401 and "Sign in" in r.text
