"""The official `openai` Python SDK against a running switchyard gateway and a fake upstream.

Run by scripts/test after `cargo build --example gateway --example fake_upstream`.
"""
import sys

import openai

from harness import run_checks, start_fake_upstream, start_gateway

def main():
    procs = []
    try:
        fake, fake_addr = start_fake_upstream()
        procs.append(fake)
        config = f"""
[server]
keepalive_ms = 300

[[providers]]
slug = "flaky"
name = "Flaky"
base_url = "http://{fake_addr}/status-503/v1"

[[providers]]
slug = "fake"
name = "Fake"
base_url = "http://{fake_addr}/ok/v1"

[[models]]
slug = "acme/model"
name = "Acme Model"
context_length = 8000

[[models.endpoints]]
provider = "flaky"
model = "m-flaky"
pricing = {{ prompt = 0.5, completion = 1.0 }}

[[models.endpoints]]
provider = "fake"
model = "m-fake"
pricing = {{ prompt = 1.0, completion = 2.0 }}
"""
        gw, base = start_gateway(config)
        procs.append(gw)
        client = openai.OpenAI(base_url=f"http://{base}", api_key="sk-anything", max_retries=0)


        def chat():
            r = client.chat.completions.create(model="acme/model", messages=[{"role": "user", "content": "hi"}])
            assert r.id.startswith("gen-"), r.id
            assert r.model == "acme/model", r.model
            assert r.choices[0].message.content == "Hello from the fake"
            assert r.choices[0].finish_reason == "stop"
            assert r.usage is not None and r.usage.prompt_tokens == 12
            # 12 prompt tokens at $1/M + 5 completion tokens at $2/M, inline as OpenRouter does.
            assert abs(r.usage.model_extra["cost"] - 0.000022) < 1e-12, r.usage.model_extra
            assert r.model_extra.get("provider") == "Fake", r.model_extra

        def stream():
            chunks = list(client.chat.completions.create(model="acme/model", messages=[{"role": "user", "content": "hi"}], stream=True))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text == "Hello from the fake", text
            usage = [c for c in chunks if c.usage is not None]
            assert len(usage) == 1 and usage[0].choices == [], usage
            assert usage[0].usage.model_extra["cost"] > 0, usage[0].usage
            assert all(c.id == chunks[0].id and c.id.startswith("gen-") for c in chunks)

        def models():
            ids = [m.id for m in client.models.list()]
            assert "acme/model" in ids, ids

        def unknown_model():
            try:
                client.chat.completions.create(model="nope/nothing", messages=[{"role": "user", "content": "hi"}])
            except openai.BadRequestError as e:
                assert "nope/nothing" in str(e), str(e)
            else:
                raise AssertionError("expected a 400")

        def legacy_completion():
            r = client.completions.create(model="acme/model", prompt="Say hi")
            assert r.choices[0].text == "Hello from the fake"

        return run_checks([("chat", chat), ("stream", stream), ("models", models), ("unknown model", unknown_model), ("legacy completions", legacy_completion)])
    finally:
        for p in procs:
            p.kill()


if __name__ == "__main__":
    sys.exit(main())
