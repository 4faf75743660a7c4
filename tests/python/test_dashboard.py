"""The dashboard in a real browser: headless Chromium, driven by Playwright, against a running
gateway with keys and a flaky provider, checking that what the page shows matches the traffic
sent. Screenshots (laptop and phone widths) go to target/.

Run by scripts/test-dashboard after `cargo build --example gateway --example fake_upstream`.
"""
import json
import os
import sys
import traceback
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

from harness import ROOT, start_fake_upstream, start_gateway

SHOTS = os.path.join(ROOT, "target")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
MGMT = "sk-dash-MANAGEMENT-0c1d"
KEYS = {"team-a": "sk-dash-TEAM-A-77e2", "team-b": "sk-dash-TEAM-B-a9f4"}


def config(fake):
    return f"""
[server]
keepalive_ms = 300

[auth]
required = true
management_key_env = "DASH_MGMT"

[[keys]]
label = "team-a"
key_env = "DASH_TEAM_A"

[[keys]]
label = "team-b"
key_env = "DASH_TEAM_B"

[[providers]]
slug = "flaky"
name = "flaky"
base_url = "http://{fake}/status-503/v1"

[[providers]]
slug = "steady"
name = "steady"
base_url = "http://{fake}/ok/v1"

[[providers]]
slug = "spare"
name = "spare"
base_url = "http://{fake}/ok/v1"

[[models]]
slug = "acme/chat"
name = "Acme Chat"
context_length = 8000

[[models.endpoints]]
provider = "flaky"
model = "chat-flaky"
pricing = {{ prompt = 0.5, completion = 1.0 }}

[[models.endpoints]]
provider = "steady"
model = "chat-steady"
pricing = {{ prompt = 1.0, completion = 2.0 }}

[[models]]
slug = "acme/code"
name = "Acme Code"
context_length = 8000

[[models.endpoints]]
provider = "spare"
model = "code-spare"
pricing = {{ prompt = 3.0, completion = 15.0 }}
"""


def post(base, key, body):
    """One completion; returns (status, provider, cost, attempts), reading SSE for streams."""
    req = urllib.request.Request(
        f"http://{base}/api/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", "X-OpenRouter-Metadata": "enabled"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as e:
        return e.code, None, 0.0, 0
    if body.get("stream"):
        chunks = [json.loads(l[6:]) for l in text.splitlines() if l.startswith("data: {")]
        last = next(c for c in reversed(chunks) if c.get("usage"))
        meta = next((c["openrouter_metadata"] for c in reversed(chunks) if "openrouter_metadata" in c), {})
        return status, chunks[0].get("provider"), last["usage"]["cost"], meta.get("attempt", 1)
    v = json.loads(text)
    return status, v.get("provider"), v["usage"]["cost"], v.get("openrouter_metadata", {}).get("attempt", 1)


def send_traffic(base):
    """Sends the traffic; returns what the dashboard should show."""
    sent = {"requests": 0, "errors": 0, "fallbacks": 0, "served": {}, "spend": {}, "models": {}}
    plan = []
    for i in range(24):
        label = "team-a" if i % 3 else "team-b"
        model = "acme/chat" if i % 4 else "acme/code"
        body = {"model": model, "stream": i % 2 == 0, "messages": [{"role": "user", "content": f"question {i}"}]}
        if i % 5 == 1:
            # Pinned to the flaky provider first: a fallback every time.
            body["provider"] = {"order": ["flaky", "steady"]}
        plan.append((label, body))
    plan.append(("team-b", {"model": "nobody/none", "messages": [{"role": "user", "content": "x"}]}))
    plan.append(("team-a", {"model": "acme/chat", "provider": {"only": ["flaky"]}, "messages": [{"role": "user", "content": "x"}]}))
    for label, body in plan:
        status, provider, cost, attempts = post(base, KEYS[label], body)
        sent["requests"] += 1
        sent["spend"].setdefault(label, 0.0)
        # Every request counts for the model it asked for, served or not.
        sent["models"][body["model"]] = sent["models"].get(body["model"], 0) + 1
        if status != 200:
            sent["errors"] += 1
            continue
        sent["served"][provider] = sent["served"].get(provider, 0) + 1
        sent["spend"][label] += cost
        sent["fallbacks"] += attempts > 1
    return sent


def pct(x):
    return f"{100 * x:.1f}%"


def usd(x):
    return f"${x:.2f}" if x >= 1 else f"${x:.6f}"


def main():
    procs = []
    failed = []
    passed = 0

    def check(name, ok, detail=""):
        nonlocal passed
        if ok:
            passed += 1
            print(f"ok   {name}")
        else:
            failed.append(name)
            print(f"FAIL {name} {detail}")

    try:
        fake, fake_addr = start_fake_upstream()
        procs.append(fake)
        # The gateway reads its keys from these variables (it inherits this environment).
        os.environ.update(DASH_MGMT=MGMT, DASH_TEAM_A=KEYS["team-a"], DASH_TEAM_B=KEYS["team-b"])
        gw, api = start_gateway(config(fake_addr))
        procs.append(gw)
        base = api.split("/", 1)[0]
        sent = send_traffic(base)
        served_total = sum(sent["served"].values())
        print("sent:", json.dumps(sent, sort_keys=True))
        os.makedirs(SHOTS, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            # Without credentials the page is refused, with the challenge a browser asks on.
            anon = browser.new_context()
            refused = anon.request.get(f"http://{base}/dashboard")
            check("no key: 401 with a Basic challenge", refused.status == 401 and refused.headers.get("www-authenticate", "").startswith("Basic "))
            anon.close()
            ctx = browser.new_context(http_credentials={"username": "ops", "password": MGMT}, viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.goto(f"http://{base}/dashboard")
            page.wait_for_selector(f'body[data-requests="{sent["requests"]}"]', timeout=15000)
            text = lambda sel: page.inner_text(sel).strip()
            check("requests", text("#kpi-requests") == str(sent["requests"]), text("#kpi-requests"))
            check("error rate", text("#kpi-error-rate") == pct(sent["errors"] / sent["requests"]), text("#kpi-error-rate"))
            check("fallback rate", text("#kpi-fallback-rate") == pct(sent["fallbacks"] / sent["requests"]), text("#kpi-fallback-rate"))
            total = sum(sent["spend"].values())
            check("spend", text("#kpi-spend") == usd(total), f"{text('#kpi-spend')} vs {usd(total)}")
            for provider, n in sent["served"].items():
                row = page.locator(f'#providers .bar-row[data-name="{provider}"]')
                shown = row.inner_text() if row.count() else ""
                check(f"provider {provider} served {n}", row.count() == 1 and row.get_attribute("data-count") == str(n), shown)
                check(f"provider {provider} share", pct(n / served_total) in shown, shown)
            flaky = page.locator('#providers .bar-row[data-name="flaky"]')
            check("flaky provider's failures shown", flaky.count() == 1 and "failed" in flaky.inner_text(), flaky.inner_text() if flaky.count() else "")
            for model, n in sent["models"].items():
                row = page.locator(f'#models .bar-row[data-name="{model}"]')
                check(f"model {model} requests {n}", row.count() == 1 and row.get_attribute("data-count") == str(n))
            for label, spend in sent["spend"].items():
                row = page.locator(f'#keys tr[data-key="{label}"]')
                shown = row.locator(".spend").inner_text() if row.count() else ""
                check(f"key {label} spend", shown == usd(spend), f"{shown} vs {usd(spend)}")
                legend = page.locator(f'#spend-keys [data-series="{label}"]')
                check(f"key {label} in the spend chart", legend.count() == 1 and usd(spend) in legend.inner_text())
            check("spend charts drawn", page.locator("#spend-keys svg polyline").count() == len(sent["spend"]))
            rows = page.locator("#recent tr[data-id]")
            check("latest generations listed", rows.count() == min(25, sent["requests"]), str(rows.count()))
            chains = page.locator("#recent .chain").all_inner_texts()
            check("an attempt chain shows the fallback", any("flaky 503" in c and "steady 200" in c for c in chains), str(chains[:5]))
            page.screenshot(path=os.path.join(SHOTS, "dashboard.png"), full_page=True)
            # A phone: one column, nothing wider than the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            width = page.evaluate("document.documentElement.scrollWidth")
            check("phone: no horizontal overflow", width <= 390, str(width))
            page.screenshot(path=os.path.join(SHOTS, "dashboard-phone.png"), full_page=True)
            browser.close()
        print(f"screenshots: {os.path.join(SHOTS, 'dashboard.png')}, dashboard-phone.png")
    except Exception:  # noqa: BLE001 - report and fail
        traceback.print_exc()
        failed.append("harness")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
