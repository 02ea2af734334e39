import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from pipeline.backends.base import AudioChat, BackendError, TextChat
from pipeline.backends.openai_compat import OpenAIAudioChat, OpenAITextChat

from ._signals import tone


class FakeOpenAI:
    """A real HTTP server on 127.0.0.1 speaking /v1/chat/completions.

    `script` is a list of actions consumed one per request (then `default`):
    ("ok", text) | ("status", code) | ("sleep", seconds) | ("slow", seconds, text)
    | ("echo", seconds): answers "echo: <last user text>" (400 when that text says "fail").
    """

    def __init__(self):
        self.script: list[tuple] = []
        self.default: tuple = ("ok", "fine")
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._body = body
                with fake.lock:
                    fake.bodies.append(json.loads(body))
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    action = fake.script.pop(0) if fake.script else fake.default
                    fake.active += 1
                    fake.max_active = max(fake.max_active, fake.active)
                try:
                    self._act(action)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with fake.lock:
                        fake.active -= 1

            def _act(self, action):
                kind = action[0]
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "no such route"}})
                if kind == "echo":  # ("echo", seconds): the last user text, after a pause
                    time.sleep(action[1])
                    last = json.loads(self._body)["messages"][-1]["content"]
                    if isinstance(last, list):
                        last = last[-1]["text"]
                    if "fail" in last:
                        return self._send(400, {"error": {"message": "bad request"}})
                    return self._send(200, _completion(f"echo: {last}"))
                if kind == "sleep":
                    time.sleep(action[1])
                    return self._send(200, _completion("too late"))
                if kind == "slow":
                    time.sleep(action[1])
                    return self._send(200, _completion(action[2]))
                if kind == "status":
                    return self._send(action[1], {"error": {"message": f"boom {action[1]}"}})
                return self._send(200, _completion(action[1]))

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hits(self) -> int:
        return len(self.bodies)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _completion(text):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


def _chat(server, **kw):
    opts = {"timeout": 5.0, "max_retries": 3, "backoff": 0.01, "max_concurrency": 4}
    opts.update(kw)
    return OpenAITextChat(server.base_url, opts.pop("model", "mistral"), **opts)


MESSAGES = [
    {"role": "system", "content": "You label sounds."},
    {"role": "user", "content": "Describe it."},
]


def test_normal_answer_and_request_shape(server):
    server.script = [("ok", "<think>hmm</think>A dog barks.")]
    chat = _chat(server)
    assert isinstance(chat, TextChat)
    assert chat.chat(MESSAGES) == "<think>hmm</think>A dog barks."  # nothing stripped
    assert server.hits == 1
    body = server.bodies[0]
    assert body["model"] == "mistral"
    assert body["messages"] == MESSAGES
    assert body["temperature"] == 0.0
    assert chat.retries == 0


def test_api_key_comes_from_the_named_environment_variable(server, monkeypatch):
    monkeypatch.setenv("RELABEL_TEST_KEY", "sk-secret-123")
    chat = _chat(server, api_key_env="RELABEL_TEST_KEY")
    chat.chat(MESSAGES)
    assert server.headers[0]["authorization"] == "Bearer sk-secret-123"
    monkeypatch.delenv("RELABEL_TEST_KEY")
    with pytest.raises(BackendError, match="RELABEL_TEST_KEY"):
        _chat(server, api_key_env="RELABEL_TEST_KEY")


def test_audio_travels_as_base64_wav_in_the_first_user_turn(server):
    server.script = [("ok", "Dog.")]
    chat = OpenAIAudioChat(server.base_url, "qwen2-audio", timeout=5, backoff=0.01)
    assert isinstance(chat, AudioChat)
    history = MESSAGES + [
        {"role": "assistant", "content": "A dog."},
        {"role": "user", "content": "Sure?"},
    ]
    assert chat.chat(tone(440, 1.0, 44100), 44100, history) == "Dog."
    sent = server.bodies[0]["messages"]
    assert sent[0] == MESSAGES[0]
    part, text = sent[1]["content"]
    assert text == {"type": "text", "text": "Describe it."}
    assert part["type"] == "input_audio"
    assert part["input_audio"]["format"] == "wav"
    wav = base64.b64decode(part["input_audio"]["data"])
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    data, sr = sf.read(io.BytesIO(wav), dtype="float32")
    assert sr == 16000 and data.shape == (16000,)
    assert abs(np.abs(data).max() - 0.3) < 0.02
    assert sent[2:] == history[2:]  # later turns carry no audio


def test_429_then_success_is_retried(server):
    server.script = [("status", 429), ("ok", "after retry")]
    chat = _chat(server)
    assert chat.chat(MESSAGES) == "after retry"
    assert server.hits == 2
    assert chat.retries == 1 and chat.requests == 2


def test_persistent_500_raises_after_the_retries(server):
    server.default = ("status", 500)
    chat = _chat(server, max_retries=2)
    with pytest.raises(BackendError, match="500") as info:
        chat.chat(MESSAGES)
    assert "3 attempt" in str(info.value)
    assert server.hits == 3
    assert chat.retries == 2


def test_400_fails_at_once(server):
    server.default = ("status", 400)
    chat = _chat(server, max_retries=3)
    with pytest.raises(BackendError, match="400"):
        chat.chat(MESSAGES)
    assert server.hits == 1
    assert chat.retries == 0


def test_timeout_raises_backend_error(server):
    server.default = ("sleep", 1.5)
    chat = _chat(server, timeout=0.3, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(BackendError, match="timed out"):
        chat.chat(MESSAGES)
    assert time.perf_counter() - start < 1.4  # gave up before the server answered
    assert server.hits == 2


def test_connection_refused_raises_backend_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chat = OpenAITextChat(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff=0.01)
    with pytest.raises(BackendError, match="connection"):
        chat.chat(MESSAGES)
    assert chat.requests == 2


def _hammer(chats, n_threads):
    results, errors = [], []

    def work(c):
        try:
            results.append(c.chat(MESSAGES))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(chats[i % len(chats)],)) for i in range(n_threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    return results


def test_concurrency_limit_is_shared_per_base_url_and_model(server):
    server.default = ("slow", 0.2, "ok")
    a = _chat(server, model="limited", max_concurrency=2)
    b = _chat(server, model="limited", max_concurrency=2)  # same endpoint: same semaphore
    assert _hammer([a, b], 8) == ["ok"] * 8
    assert server.hits == 8
    assert server.max_active == 2


def test_without_a_tight_limit_requests_overlap(server):
    # Control for the test above: the server does see parallel requests when allowed.
    server.default = ("slow", 0.2, "ok")
    free = _chat(server, model="free", max_concurrency=8)
    _hammer([free], 6)
    assert server.max_active > 2


# --- a chunk's requests: concurrent up to the limit, in order, sampled ones seeded ----------


def test_chat_batch_runs_a_chunk_concurrently_up_to_the_limit(server):
    server.default = ("echo", 0.2)
    chat = _chat(server, model="batched", max_concurrency=3)
    requests = [[{"role": "user", "content": f"clip {i}"}] for i in range(9)]
    t0 = time.perf_counter()
    answers = chat.chat_batch(requests)
    elapsed = time.perf_counter() - t0
    assert answers == [f"echo: clip {i}" for i in range(9)]  # in request order
    assert server.hits == 9
    assert server.max_active == 3  # up to the limit, never past it
    assert elapsed < 9 * 0.2 * 0.6  # three waves of 0.2 s, not nine


def test_chat_batch_hands_back_a_failed_request_without_losing_the_others(server):
    server.default = ("echo", 0.0)
    chat = _chat(server, model="batched-fail", max_concurrency=4)
    requests = [[{"role": "user", "content": t}] for t in ("a", "please fail", "c")]
    out = chat.chat_batch(requests, return_exceptions=True)
    assert out[0] == "echo: a" and out[2] == "echo: c"
    assert isinstance(out[1], BackendError) and "400" in str(out[1])
    with pytest.raises(BackendError):
        chat.chat_batch(requests)


def test_sampled_requests_send_temperature_top_p_and_seed(server):
    from pipeline.backends.base import Sampling

    server.default = ("echo", 0.0)
    chat = _chat(server, model="sampled")
    chat.chat_batch(
        [MESSAGES, MESSAGES], [None, Sampling(temperature=0.8, top_p=0.9, seed=1234)]
    )
    greedy, sampled = sorted(server.bodies, key=lambda b: "seed" in b)
    assert greedy["temperature"] == 0.0 and "seed" not in greedy and "top_p" not in greedy
    assert sampled["temperature"] == 0.8 and sampled["top_p"] == 0.9
    assert sampled["seed"] == 1234


def test_audio_chat_batch_sends_each_clip_with_its_own_messages(server):
    server.default = ("echo", 0.1)
    chat = OpenAIAudioChat(server.base_url, "qwen-audio", timeout=5.0, max_concurrency=2)
    clips = [tone(440, 1.0, 16000), tone(880, 0.5, 16000)]
    out = chat.chat_batch(
        [(c, 16000, [{"role": "user", "content": f"describe {i}"}]) for i, c in enumerate(clips)]
    )
    assert out == ["echo: describe 0", "echo: describe 1"]
    sizes = sorted(
        len(base64.b64decode(b["messages"][0]["content"][0]["input_audio"]["data"]))
        for b in server.bodies
    )
    assert sizes[0] < sizes[1]  # two different clips travelled, one per request
    assert server.max_active == 2
