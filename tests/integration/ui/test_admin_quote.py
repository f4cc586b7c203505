"""`POST /admin/quote`, the price the admin generate form shows while it is being filled in:
through the real catalog, with the prompt still empty, invalid parameters named by field, and
the admin token required like every admin route."""

from __future__ import annotations

from tests.integration.gateway.conftest import gateway_running


async def test_the_admin_quote_prices_as_the_form_changes(pg_url, nats_url, monkeypatch, tmp_path):
    async with gateway_running(pg_url, nats_url, monkeypatch, tmp_path) as gw:
        # 4o Image: 1 output 6 credits, 2 → 7, 4 → 8; a credit is $0.005. No prompt yet.
        prices = []
        for outputs in (1, 2, 4):
            answer = await gw.admin(
                "POST", "/admin/quote", json={"model_slug": "kie-4o-image", "number_of_outputs": outputs}
            )
            assert answer.status_code == 200, answer.text
            prices.append((answer.json()["amount"], answer.json()["usd"]))
        assert [(float(a), float(u)) for a, u in prices] == [(6, 0.03), (7, 0.035), (8, 0.04)]
        assert answer.json()["currency"] == "credits"
        assert "Credits" in answer.json()["display"]

        free = await gw.admin(
            "POST",
            "/admin/quote",
            json={"model_slug": "local-image", "prompt": "", "parameters": {"width": 320, "height": 240}},
        )
        assert free.status_code == 200, free.text
        assert float(free.json()["usd"]) == 0
        assert free.json()["model"] == "local-image"

        bad = await gw.admin(
            "POST",
            "/admin/quote",
            json={"model_slug": "local-image", "parameters": {"width": 10, "style": "x"}},
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        fields = {e["field"] for e in bad.json()["errors"]}
        assert fields == {"parameters.width", "parameters.style"}

        unknown = await gw.admin("POST", "/admin/quote", json={"model_slug": "no-such-model"})
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "MODEL_NOT_FOUND"

        anonymous = await gw.http.post("/admin/quote", json={"model_slug": "local-image"})
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "ADMIN_TOKEN_MISSING"
