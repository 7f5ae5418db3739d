"""The HTTP contract: every route, every error as ``{"error": ...}`` with the CLI's meaning."""

from __future__ import annotations

import json
import time

import jwt

from tests.fakes import FALLBACK_REPLY, price, route, scripted_llm
from tests.serve.conftest import SECRET

TURN_KEYS = {
    "session",
    "user_id",
    "turn",
    "route",
    "reply",
    "offer",
    "error",
    "status",
    "approval",
    "latency_s",
}


def test_a_turn_returns_the_turn_json_object(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(8)))
    r = api.turn("h1", "Can I get a discount?")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == TURN_KEYS
    assert body["user_id"] == "user_100" and body["turn"] == 1 and body["route"] == "negotiate"
    assert body["offer"]["discount_percent"] == 8 and body["offer"]["code"].startswith("SGR-")
    assert body["offer"]["code"] in body["reply"]


def test_the_customer_comes_from_the_token_not_the_body(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(4)))
    r = api.client.post(
        "/v1/sessions/h2/turns",
        json={"message": "discount?", "user_id": "user_101"},
        headers=api.shopper("user_100"),
    )
    assert r.status_code == 400 and "user_id" in r.json()["error"]  # unknown fields refused
    assert api.turn("h2", "discount?", user="user_101").json()["user_id"] == "user_101"


def test_turn_as_server_sent_events(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(6)))
    with api.client.stream(
        "POST",
        "/v1/sessions/sse1/turns",
        json={"message": "Any discount?"},
        headers={**api.shopper(), "Accept": "text/event-stream"},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    frames = [f for f in text.split("\n\n") if f.strip()]
    events = [(f.split("\n")[0][7:], json.loads(f.split("\n")[1][6:])) for f in frames]
    names = [e for e, _ in events]
    assert names[0] == "accepted" and names[-1] == "turn"
    assert [d["node"] for e, d in events if e == "node"] == [
        "router",
        "retrieval",
        "pricing",
        "offer",
    ]
    final = events[-1][1]
    assert set(final) == TURN_KEYS and final["offer"]["discount_percent"] == 6


def test_history_and_state_read_back(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(5), route("respond")))
    code = api.turn("h3", "discount please").json()["offer"]["code"]
    api.turn("h3", "When do you open?")
    turns = api.client.get("/v1/sessions/h3", headers=api.shopper()).json()
    assert [t["customer"] for t in turns] == ["discount please", "When do you open?"]
    assert turns[0]["offer_code"] == code and all(t["reply"] for t in turns)
    state = api.client.get("/v1/sessions/h3/state", headers=api.shopper()).json()
    assert state["offer"]["code"] == code and state["approval_pending"] is False
    # a manager may read any session; an unknown one is 404
    assert api.client.get("/v1/sessions/h3", headers=api.manager()).status_code == 200
    r = api.client.get("/v1/sessions/nobody-here", headers=api.manager())
    assert r.status_code == 404 and "error" in r.json()


def test_offer_codes_are_checked_for_the_caller_only(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(5)))
    code = api.turn("o1", "a discount?").json()["offer"]["code"]
    mine = api.client.get(f"/v1/offers/{code}", headers=api.shopper()).json()
    assert mine["valid"] is True and mine["offer"]["discount_percent"] == 5
    theirs = api.client.get(f"/v1/offers/{code}", headers=api.shopper("user_101")).json()
    assert theirs == {"code": code, "valid": False, "reason": "unknown_code", "offer": None}


def test_approvals_listed_with_context_and_decided_once(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(19, "I can give you 19% off.")))
    r = api.turn("a1", "Give me a discount or I leave")
    assert r.json()["status"] == "approval_pending" and r.json()["offer"]["code"] is None
    pending = api.client.get("/v1/approvals", headers=api.manager()).json()
    assert len(pending) == 1
    p = pending[0]
    assert p["session"] == "a1" and p["proposed_percent"] == 19 and p["cap_percent"] == 20
    assert p["customer"]["cart_value"] == 240 and p["customer"]["churn_probability"] == 0.85
    assert p["reasoning"]["churn_analysis"] == "likely to leave"
    assert any("approval threshold" in reason for reason in p["reasons"])
    done = api.client.post(
        "/v1/approvals/a1", json={"decision": "approve", "percent": 17}, headers=api.manager()
    )
    assert done.status_code == 200, done.text
    assert done.json()["offer"]["discount_percent"] == 17 and done.json()["offer"]["code"]
    again = api.client.post(
        "/v1/approvals/a1", json={"decision": "reject"}, headers=api.manager("other-manager-456")
    )
    assert again.status_code == 409 and "no pending approval" in again.json()["error"]
    assert api.client.get("/v1/approvals", headers=api.manager()).json() == []
    offer = api.services.ledger().get(done.json()["offer"]["code"])
    assert offer.decided_by == "alice"  # the approver is the token's manager


def test_a_new_turn_while_a_manager_decides_is_a_conflict(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(19)))
    api.turn("a2", "discount or I leave")
    r = api.turn("a2", "hello?")
    assert r.status_code == 409 and "approval" in r.json()["error"]


def test_report_and_csv_for_analysts(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(5), route("accept_offer")))
    api.turn("r1", "discount please")
    api.turn("r1", "I accept")
    report = api.client.get("/v1/report", headers=api.manager()).json()
    assert report["offers_issued"] == 1 and report["offers_accepted"] == 1
    assert report["timeline"][-1]["accepted"] == 1
    csv = api.client.get("/v1/report.csv", headers=api.manager())
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("section,key,issued")
    assert any(line.startswith("day,") for line in csv.text.splitlines())
    bad = api.client.get("/v1/report?since=yesterday", headers=api.manager())
    assert bad.status_code == 400 and "since" in bad.json()["error"]


def test_health_and_readiness(make_api) -> None:
    api = make_api(scripted_llm())
    assert api.client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = api.client.get("/readyz")  # the LLM endpoint of the test settings is closed
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["llm"].startswith("unavailable")


def test_openapi_and_docs(make_api) -> None:
    api = make_api(scripted_llm())
    assert api.client.get("/docs").status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/sessions/{session_id}/turns",
        "/v1/sessions/{session_id}",
        "/v1/offers/{code}",
        "/v1/approvals",
        "/v1/approvals/{session_id}",
        "/v1/report",
        "/healthz",
        "/readyz",
    ):
        assert path in paths


# --- who may do what ----------------------------------------------------------------------


def test_another_customers_session_is_forbidden(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(5)))
    api.turn("own1", "discount?", user="user_100")
    r = api.turn("own1", "discount?", user="user_101")
    assert r.status_code == 403 and "another customer" in r.json()["error"]
    assert api.client.get("/v1/sessions/own1", headers=api.shopper("user_101")).status_code == 403


def test_forged_expired_or_missing_tokens_are_unauthorised(make_api) -> None:
    api = make_api(scripted_llm())
    url, body = "/v1/sessions/t1/turns", {"message": "hi"}
    now = int(time.time())
    forged = jwt.encode(
        {"sub": "user_100", "exp": now + 600}, "not-the-secret-but-just-as-long-as-it-0123", "HS256"
    )
    expired = jwt.encode({"sub": "user_100", "exp": now - 5}, SECRET, "HS256")
    no_exp = jwt.encode({"sub": "user_100"}, SECRET, "HS256")
    none_alg = jwt.encode({"sub": "user_100", "exp": now + 600}, None, "none")
    for token in (forged, expired, no_exp, none_alg, "garbage"):
        r = api.client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (token, r.text)
        assert r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
    assert api.client.post(url, json=body).status_code == 401


def test_shopper_tokens_cannot_reach_manager_routes(make_api) -> None:
    api = make_api(scripted_llm())
    for method, url in (("GET", "/v1/approvals"), ("GET", "/v1/report")):
        assert api.client.request(method, url, headers=api.shopper()).status_code == 403
        assert api.client.request(method, url).status_code == 401
        wrong = {"Authorization": "Bearer not-a-manager"}
        assert api.client.request(method, url, headers=wrong).status_code == 401
    r = api.client.post("/v1/approvals/x", json={"decision": "approve"}, headers=api.shopper())
    assert r.status_code == 403
    # and a manager token is no shopper
    r = api.client.post("/v1/sessions/m/turns", json={"message": "hi"}, headers=api.manager())
    assert r.status_code == 403


def test_cors_only_for_the_allowed_origins(make_api) -> None:
    api = make_api(scripted_llm())
    ok = api.client.options(
        "/v1/me",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"},
    )
    assert ok.headers.get("access-control-allow-origin") == "https://shop.example"
    bad = api.client.options(
        "/v1/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in bad.headers


def test_oversized_bodies_are_refused(make_api) -> None:
    api = make_api(scripted_llm(), max_body_bytes=1000)
    r = api.turn("big", "x" * 2000)
    assert r.status_code == 413 and r.json() == {"error": "request body too large"}


def test_a_session_is_rate_limited(make_api) -> None:
    replies = [route("respond", reply="We open at nine every day.")] * 3
    api = make_api(scripted_llm(*replies), session_rate_limit=2)
    assert api.turn("rl", "When do you open?").status_code == 200
    assert api.turn("rl", "When do you open?").status_code == 200
    r = api.turn("rl", "When do you open?")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert api.turn("another", "When do you open?").status_code == 200  # per session


def test_errors_carry_the_cli_meanings(make_api) -> None:
    api = make_api(scripted_llm("Sure! I'd be happy to help."))  # prose: not enforced
    assert api.turn("e1", "   ").status_code == 400  # empty, nothing written
    assert api.turn("bad id!", "hi").status_code in (400, 404)
    r = api.turn("e2", "hi", user="user_404")
    assert r.status_code == 400 and "unknown user" in r.json()["error"]
    fallback = api.turn("e3", "hi")
    assert fallback.status_code == 503
    assert fallback.json()["status"] == "fallback" and fallback.json()["reply"] == FALLBACK_REPLY


def test_a_retry_with_its_idempotency_key_is_answered_once(make_api) -> None:
    api = make_api(scripted_llm(route("negotiate"), price(8)))
    key = {**api.shopper(), "Idempotency-Key": "5f0c7e2a-1b2c-4d5e-8f90-0a1b2c3d4e5f"}
    first = api.client.post("/v1/sessions/idem1/turns", json={"message": "deal?"}, headers=key)
    again = api.client.post("/v1/sessions/idem1/turns", json={"message": "deal?"}, headers=key)
    assert first.status_code == again.status_code == 200, again.text
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["offer"]["code"] == first.json()["offer"]["code"]
    history = api.client.get("/v1/sessions/idem1", headers=api.shopper()).json()
    assert len(history) == 1
    other = api.client.post("/v1/sessions/idem1/turns", json={"message": "more?"}, headers=key)
    assert other.status_code == 400 and "another message" in other.json()["error"]
    bad = {**api.shopper(), "Idempotency-Key": "not a key"}
    r = api.client.post("/v1/sessions/idem1/turns", json={"message": "deal?"}, headers=bad)
    assert r.status_code == 400 and "idempotency key" in r.json()["error"]
    long = {**api.shopper(), "Idempotency-Key": "k" * 129}
    r = api.client.post("/v1/sessions/idem1/turns", json={"message": "deal?"}, headers=long)
    assert r.status_code == 400 and "error" in r.json()
