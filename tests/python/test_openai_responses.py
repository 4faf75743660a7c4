"""The official `openai` Python SDK's Responses and embeddings calls against a running switchyard
gateway and the fake upstream: `client.responses.create` plain, streamed, and through a
function-calling round trip (continued with `previous_response_id`), and `client.embeddings.create`.

Run by scripts/test after `cargo build --example gateway --example fake_upstream`.
"""
import json
import sys

import openai

from harness import run_checks, start_fake_upstream, start_gateway

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def config(fake_addr):
    return f"""
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

[[providers]]
slug = "tools"
name = "Tools"
base_url = "http://{fake_addr}/toolcall/v1"

[[models]]
slug = "acme/model"
[[models.endpoints]]
provider = "flaky"
model = "m-flaky"
pricing = {{ prompt = 0.5, completion = 1.0 }}
[[models.endpoints]]
provider = "fake"
model = "m-fake"
pricing = {{ prompt = 1.0, completion = 2.0 }}

[[models]]
slug = "acme/tools"
[[models.endpoints]]
provider = "tools"
model = "m-tools"
pricing = {{ prompt = 1.0, completion = 1.0 }}

[[models]]
slug = "acme/embed"
output_modalities = ["embeddings"]
[[models.endpoints]]
provider = "fake"
model = "m-embed"
pricing = {{ prompt = 0.02 }}
"""


def main():
    procs = []
    try:
        fake, fake_addr = start_fake_upstream()
        procs.append(fake)
        gw, base = start_gateway(config(fake_addr))
        procs.append(gw)
        client = openai.OpenAI(base_url=f"http://{base}", api_key="sk-anything", max_retries=0)


        def plain():
            r = client.responses.create(model="acme/model", input="hi", instructions="Be brief.")
            assert r.id.startswith("resp_"), r.id
            assert r.status == "completed", r.status
            assert r.model == "acme/model", r.model
            assert r.output_text == "Hello from the fake", r.output_text
            assert r.usage.input_tokens == 12 and r.usage.output_tokens == 5, r.usage
            assert r.usage.total_tokens == 17, r.usage
            assert r.usage.model_extra["cost"] > 0, r.usage

        def stream():
            events = list(client.responses.create(model="acme/model", input="hi", stream=True))
            types = [e.type for e in events]
            assert types[:2] == ["response.created", "response.in_progress"], types
            assert types[-1] == "response.completed", types
            assert [e.sequence_number for e in events] == list(range(len(events)))
            text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
            assert text == "Hello from the fake", text
            done = events[-1].response
            assert done.output_text == text, done
            assert done.usage.output_tokens == 3, done.usage

        def function_call_round_trip():
            r = client.responses.create(model="acme/tools", input="Weather in Paris?", tools=[WEATHER])
            calls = [o for o in r.output if o.type == "function_call"]
            assert len(calls) == 1, r.output
            call = calls[0]
            assert call.name == "get_weather", call
            assert json.loads(call.arguments) == {"city": "Paris"}, call.arguments
            # The tool's result continues the stored conversation.
            r2 = client.responses.create(
                model="acme/tools",
                previous_response_id=r.id,
                tools=[WEATHER],
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": "18C"}'}],
            )
            assert r2.output_text == "Hello from the fake", r2.output
            assert r2.previous_response_id == r.id

        def fallback_before_content():
            # `:floor` tries the cheaper endpoint first, and it answers 503: the client sees
            # only the second one's stream.
            events = list(client.responses.create(model="acme/model:floor", input="hi", stream=True))
            types = [e.type for e in events]
            assert types[-1] == "response.completed" and "response.failed" not in types, types
            text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
            assert text == "Hello from the fake", text

        def streamed_function_call():
            events = list(client.responses.create(model="acme/tools", input="Weather?", tools=[WEATHER], stream=True))
            done = [e for e in events if e.type == "response.function_call_arguments.done"]
            assert len(done) == 1 and json.loads(done[0].arguments) == {"city": "Paris"}, done
            args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
            assert args == done[0].arguments, args
            final = events[-1].response.output[0]
            assert final.type == "function_call" and final.call_id == "call_fake", final

        def custom_tool_call():
            # Codex's freeform apply_patch: the call comes back as a custom_tool_call item.
            patch = {"type": "custom", "name": "apply_patch", "description": "Edit files."}
            r = client.responses.create(model="acme/tools", input="Patch it", tools=[patch])
            call = r.output[0]
            assert call.type == "custom_tool_call" and call.name == "apply_patch", r.output
            # The fake wrote arguments without `input`, so they come back as they were.
            assert json.loads(call.input) == {"city": "Paris"}, call.input

        def unknown_previous_response():
            try:
                client.responses.create(model="acme/model", input="hi", previous_response_id="resp_gone")
            except openai.BadRequestError as e:
                assert "resp_gone" in str(e), str(e)
            else:
                raise AssertionError("expected a 400")

        def embeddings():
            e = client.embeddings.create(model="acme/embed", input=["first", "second"])
            assert len(e.data) == 2, e.data
            assert e.data[1].embedding == [0.25, -0.5, 1.0], e.data[1].embedding
            assert e.usage.prompt_tokens == 16, e.usage
            assert abs(e.usage.model_extra["cost"] - 16 * 0.02 / 1e6) < 1e-15, e.usage

        def chat_model_does_not_embed():
            try:
                client.embeddings.create(model="acme/model", input="x")
            except openai.BadRequestError as e:
                assert "not an embedding model" in str(e), str(e)
            else:
                raise AssertionError("expected a 400")

        return run_checks([
            ("responses", plain),
            ("responses stream", stream),
            ("fallback before content", fallback_before_content),
            ("function-calling round trip", function_call_round_trip),
            ("streamed function call", streamed_function_call),
            ("custom tool call", custom_tool_call),
            ("unknown previous_response_id", unknown_previous_response),
            ("embeddings", embeddings),
            ("chat model does not embed", chat_model_does_not_embed),
        ])
    finally:
        for p in procs:
            p.kill()


if __name__ == "__main__":
    sys.exit(main())
