"""The official `anthropic` Python SDK against a running switchyard gateway.

The gateway's `/api/v1/messages` sits in front of two fake upstreams served from this script:
an OpenAI-compatible one (text, tool calls, reasoning, and a 503-failing twin) that the gateway
translates to, and an Anthropic one that gets the SDK's body natively. Run by scripts/test after
`cargo build --example gateway`.
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic

from harness import ROOT, run_checks, start_gateway
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "anthropic")


def chat_answer(req):
    """What an OpenAI-compatible provider answers: the pieces of one assistant turn."""
    last = req["messages"][-1]
    if last["role"] == "tool":
        return {"text": f"It is {last['content']} in Paris."}, "stop"
    if req.get("tools"):
        return {"text": "Let me check.", "tool": ("call_7", "get_weather", '{"city": "Paris"}')}, "tool_calls"
    # A reasoning model thinks whatever it is asked; this one shows it when asked to think.
    if "think" in str(last["content"]):
        return {"reasoning": "Two plus two is four.", "text": "4"}, "stop"
    return {"text": "Hello from the fake"}, "stop"


def chat_json(req, turn, finish):
    message = {"role": "assistant", "content": turn.get("text")}
    if "reasoning" in turn:
        message["reasoning"] = turn["reasoning"]
    if "tool" in turn:
        call_id, name, args = turn["tool"]
        message["tool_calls"] = [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]
    return {
        "id": "chatcmpl-py", "object": "chat.completion", "created": 1700000000, "model": req["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30},
    }


def chat_chunks(req, turn, finish):
    def chunk(delta, finish_reason=None, usage=None):
        c = {"id": "chatcmpl-py", "object": "chat.completion.chunk", "created": 1700000000, "model": req["model"],
             "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        if usage:
            c["usage"] = usage
        return f"data: {json.dumps(c)}\n\n"

    out = [chunk({"role": "assistant", "content": ""})]
    if "reasoning" in turn:
        out.append(chunk({"reasoning": turn["reasoning"]}))
    for i, word in enumerate(turn.get("text", "").split(" ")):
        out.append(chunk({"content": word if i == 0 else " " + word}))
    if "tool" in turn:
        call_id, name, args = turn["tool"]
        out.append(chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                          "function": {"name": name, "arguments": ""}}]}))
        half = len(args) // 2
        for piece in (args[:half], args[half:]):
            out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    out.append(chunk({}, finish))
    out.append(chunk(None, usage={"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30}))
    out.append("data: [DONE]\n\n")
    return "".join(out)


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        pass

    def send(self, status, content_type, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Upstream.seen.append((self.path, dict(self.headers), req))
        if self.path.startswith("/gemini/"):
            gemini = os.path.join(ROOT, "tests", "fixtures", "gemini")
            if ":streamGenerateContent" in self.path:
                with open(os.path.join(gemini, "stream_text.sse")) as f:
                    return self.send(200, "text/event-stream", f.read())
            with open(os.path.join(gemini, "text.json")) as f:
                return self.send(200, "application/json", f.read())
        if self.path.startswith("/fail/"):
            return self.send(503, "application/json", '{"error":{"message":"overloaded","code":503}}')
        if self.path == "/anthropic/v1/messages/count_tokens":
            return self.send(200, "application/json", '{"input_tokens": 17}')
        if self.path == "/anthropic/v1/messages":
            name = "thinking.json" if req.get("thinking") else "text.json"
            if req.get("stream"):
                with open(os.path.join(FIXTURES, "stream_thinking.sse" if req.get("thinking") else "stream_text.sse")) as f:
                    return self.send(200, "text/event-stream", f.read())
            with open(os.path.join(FIXTURES, name)) as f:
                return self.send(200, "application/json", f.read())
        turn, finish = chat_answer(req)
        if req.get("stream"):
            return self.send(200, "text/event-stream", chat_chunks(req, turn, finish))
        return self.send(200, "application/json", json.dumps(chat_json(req, turn, finish)))


def config(up):
    return f"""
[server]
keepalive_ms = 300

[[providers]]
slug = "oai"
name = "OpenAI-compatible"
base_url = "http://{up}/openai/v1"

[[providers]]
slug = "flaky"
name = "Flaky"
base_url = "http://{up}/fail/v1"

[[providers]]
slug = "anthropic"
name = "Anthropic"
api = "anthropic"
base_url = "http://{up}/anthropic/v1"

[[models]]
slug = "acme/chat"
name = "Acme Chat"
[[models.endpoints]]
provider = "oai"
model = "acme-chat-1"
pricing = {{ prompt = 1.0, completion = 2.0 }}

[[providers]]
slug = "google"
name = "Google AI Studio"
api = "gemini"
base_url = "http://{up}/gemini/v1beta"

[[models]]
slug = "google/gemini-test"
[[models.endpoints]]
provider = "google"
model = "gemini-test-flash"
pricing = {{ prompt = 1.0, completion = 2.0 }}

[[models]]
slug = "acme/flaky"
[[models.endpoints]]
provider = "flaky"
model = "flaky-1"
pricing = {{ prompt = 0.1, completion = 0.1 }}
[[models.endpoints]]
provider = "oai"
model = "acme-chat-1"
pricing = {{ prompt = 1.0, completion = 2.0 }}

[[models]]
slug = "anthropic/claude-sonnet-4.5"
name = "Claude Sonnet 4.5"
[[models.endpoints]]
provider = "anthropic"
model = "claude-sonnet-4-5-20250929"
pricing = {{ prompt = 3.0, completion = 15.0 }}
"""


WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
HI = [{"role": "user", "content": "hi"}]


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gw = None
    try:
        gw, base = start_gateway(config(f"127.0.0.1:{server.server_address[1]}"))
        # Claude Code's setting: ANTHROPIC_BASE_URL is the gateway's `/api`.
        root = base.rsplit("/v1", 1)[0]
        client = anthropic.Anthropic(base_url=f"http://{root}", api_key="sk-anything", max_retries=0)

        def plain():
            m = client.messages.create(model="acme/chat", max_tokens=64, messages=HI)
            assert m.type == "message" and m.role == "assistant", m
            assert m.content[0].type == "text" and m.content[0].text == "Hello from the fake", m.content
            assert m.stop_reason == "end_turn", m.stop_reason
            assert m.usage.input_tokens == 21 and m.usage.output_tokens == 9, m.usage
            assert m.id.startswith("msg_"), m.id

        def stream():
            kinds = []
            with client.messages.stream(model="acme/chat", max_tokens=64, messages=HI) as s:
                for event in s:
                    kinds.append(event.type)
                final = s.get_final_message()
            assert final.content[0].text == "Hello from the fake", final.content
            assert final.stop_reason == "end_turn" and final.usage.output_tokens == 9, final
            assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds

        def tool_round_trip():
            first = client.messages.create(model="acme/chat", max_tokens=64, tools=[WEATHER],
                                           messages=[{"role": "user", "content": "Weather in Paris?"}])
            assert first.stop_reason == "tool_use", first
            use = [b for b in first.content if b.type == "tool_use"][0]
            assert use.name == "get_weather" and use.input == {"city": "Paris"}, use
            second = client.messages.create(
                model="acme/chat", max_tokens=64, tools=[WEATHER],
                messages=[{"role": "user", "content": "Weather in Paris?"},
                          {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                          {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18°C"}]}])
            assert second.content[0].text == "It is 18°C in Paris.", second.content
            _, _, upstream = Upstream.seen[-1]
            assert upstream["messages"][-1] == {"role": "tool", "tool_call_id": "call_7", "content": "18°C"}, upstream

        def streamed_tool_use():
            with client.messages.stream(model="acme/chat", max_tokens=64, tools=[WEATHER],
                                        messages=[{"role": "user", "content": "Weather in Paris?"}]) as s:
                final = s.get_final_message()
            use = [b for b in final.content if b.type == "tool_use"][0]
            assert use.input == {"city": "Paris"} and final.stop_reason == "tool_use", final

        def thinking_translated():
            think = [{"role": "user", "content": "think: 2 + 2?"}]
            m = client.messages.create(model="acme/chat", max_tokens=2048, messages=think,
                                       thinking={"type": "enabled", "budget_tokens": 1024})
            kinds = [b.type for b in m.content]
            assert kinds == ["thinking", "text"], m.content
            assert m.content[0].thinking == "Two plus two is four.", m.content[0]
            with client.messages.stream(model="acme/chat", max_tokens=2048, messages=think,
                                        thinking={"type": "enabled", "budget_tokens": 1024}) as s:
                final = s.get_final_message()
            assert [b.type for b in final.content] == ["thinking", "text"], final.content

        def thinking_native():
            m = client.messages.create(model="claude-sonnet-4-5", max_tokens=2048,
                                       messages=[{"role": "user", "content": "27 * 453?"}],
                                       thinking={"type": "enabled", "budget_tokens": 1024})
            assert [b.type for b in m.content] == ["thinking", "redacted_thinking", "text"], m.content
            assert m.content[0].signature, m.content[0]
            path, headers, upstream = Upstream.seen[-1]
            assert path == "/anthropic/v1/messages" and upstream["thinking"]["budget_tokens"] == 1024, upstream
            assert upstream["model"] == "claude-sonnet-4-5-20250929", upstream
            # The SDK's own `anthropic-version` goes through (the gateway defaults it only when absent).
            assert headers.get("anthropic-version", "").startswith("20"), headers

        def fallback_before_content():
            with client.messages.stream(model="acme/flaky:floor", max_tokens=64, messages=HI) as s:
                final = s.get_final_message()
            assert final.content[0].text == "Hello from the fake", final.content
            assert any(p.startswith("/fail/") for p, _, _ in Upstream.seen), "the flaky endpoint was tried"

        def gemini_upstream():
            m = client.messages.create(model="google/gemini-test", max_tokens=64, messages=HI)
            assert m.content[0].text == "AI learns patterns from data to make predictions.", m.content
            with client.messages.stream(model="google/gemini-test", max_tokens=64, messages=HI) as s:
                final = s.get_final_message()
            assert final.content[0].text == "The quick brown fox jumps.", final.content
            assert final.usage.output_tokens == 6, final.usage

        def unknown_model():
            try:
                client.messages.create(model="nope/nothing", max_tokens=8, messages=HI)
            except anthropic.BadRequestError as e:
                assert "nope/nothing" in str(e), str(e)
            else:
                raise AssertionError("expected a 400")

        def count_tokens():
            n = client.messages.count_tokens(model="claude-sonnet-4-5", messages=HI)
            assert n.input_tokens == 17, n
            n = client.messages.count_tokens(model="acme/chat", messages=HI)
            assert n.input_tokens > 0, n

        def models():
            ids = [m.id for m in client.models.list()]
            assert "anthropic/claude-sonnet-4.5" in ids and "acme/chat" in ids, ids

        return run_checks([("plain", plain), ("stream", stream), ("tool-use round trip", tool_round_trip),
                         ("streamed tool use", streamed_tool_use), ("thinking (translated)", thinking_translated),
                         ("thinking (native)", thinking_native), ("fallback before content", fallback_before_content),
                         ("gemini upstream", gemini_upstream),
                         ("unknown model", unknown_model), ("count_tokens", count_tokens), ("models", models)])
    finally:
        if gw:
            gw.kill()
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
