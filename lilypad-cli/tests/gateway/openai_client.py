"""The gateway through the official `openai` Python client (run by
lilypad-cli/tests/gateway_openai.rs, which starts a local network and the gateway).

Environment: GATEWAY_URL (http://127.0.0.1:PORT/v1), MODEL (embeddings), CHAT_MODEL
(a chat model, optional), GOOD_KEY, CAPPED_KEY (a key with a spend limit of 1 token),
REVOKED_KEY, WRONG_KEY. Prints one JSON line of findings (latency of one embeddings
request, dimension, job status, the chat completion).
"""

import json
import math
import os
import sys
import time

import httpx
import openai
from openai import OpenAI

url = os.environ["GATEWAY_URL"]
model = os.environ["MODEL"]


def client(key):
    # No retries: each retry of a failed request would run (and pay for) another job.
    return OpenAI(base_url=url, api_key=key, max_retries=0, timeout=300)


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


good = client(os.environ["GOOD_KEY"])
found = {}

# The models the gateway serves.
ids = [m.id for m in good.models.list()]
check(model in ids, f"{model} not in /v1/models: {ids}")

# Embeddings of three texts: three vectors of one dimension, all floats.
texts = [
    "A cat sits on the mat.",
    "A kitten is sitting on a rug.",
    "Stock markets fell sharply today.",
]
started = time.monotonic()
raw = good.embeddings.with_raw_response.create(model=model, input=texts)
found["embeddings_latency_s"] = round(time.monotonic() - started, 2)
res = raw.parse()
check(res.model == model, f"model {res.model!r}")
check(len(res.data) == len(texts), f"{len(res.data)} embeddings for {len(texts)} texts")
check([d.index for d in res.data] == [0, 1, 2], "indexes")
dims = {len(d.embedding) for d in res.data}
check(len(dims) == 1 and min(dims) > 0, f"dimensions {dims}")
check(all(isinstance(x, float) for d in res.data for x in d.embedding), "not all floats")
check(res.usage.total_tokens > 0, f"usage {res.usage}")
vectors = [d.embedding for d in res.data]
close, far = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
check(close > far, f"cat/kitten {close:.3f} is not closer than cat/markets {far:.3f}")
found.update(dimension=dims.pop(), tokens=res.usage.total_tokens, cos_close=round(close, 3), cos_far=round(far, 3))

# The same request in the float format the client asks for explicitly.
res_f = good.embeddings.create(model=model, input="A single text.", encoding_format="float")
check(len(res_f.data) == 1 and len(res_f.data[0].embedding) == found["dimension"], "single text")

# The request's job: its deal, results CID and timings.
job_id = raw.headers.get("lilypad-job-id")
check(job_id, "no lilypad-job-id header")
job = httpx.get(f"{url}/jobs/{job_id}", headers={"Authorization": f"Bearer {os.environ['GOOD_KEY']}"}).json()
check(job.get("state") == "done", f"job {job}")
check(job.get("deal_id", "").startswith("0x") and job.get("results_cid"), f"job {job}")
found["job"] = {k: job[k] for k in ("deal_id", "results_cid", "timings_ms")}

# Chat: a completion, then the same request (same seed) streamed: the chunks carry
# the same text, and the stream ends with finish_reason "stop" and the usage.
chat_model = os.environ.get("CHAT_MODEL")
if chat_model:
    check(chat_model in ids, f"{chat_model} not in /v1/models: {ids}")
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    started = time.monotonic()
    whole = good.chat.completions.create(model=chat_model, messages=messages, seed=7, max_tokens=24)
    chat_latency = round(time.monotonic() - started, 2)
    check(whole.object == "chat.completion" and whole.model == chat_model, f"{whole}")
    check(len(whole.choices) == 1, f"choices {whole.choices}")
    msg = whole.choices[0].message
    check(msg.role == "assistant" and msg.content and msg.content.strip(), f"message {msg}")
    u = whole.usage
    check(u.prompt_tokens > 0 and 0 < u.completion_tokens <= 24, f"usage {u}")
    check(u.prompt_tokens + u.completion_tokens == u.total_tokens, f"usage {u}")
    stream = good.chat.completions.create(
        model=chat_model,
        messages=messages,
        seed=7,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, roles, usage, chunks = [], [], [], None, 0
    for chunk in stream:
        chunks += 1
        check(chunk.object == "chat.completion.chunk", f"chunk {chunk}")
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.role:
                roles.append(choice.delta.role)
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    streamed = "".join(pieces)
    check(roles == ["assistant"], f"roles {roles}")
    check(streamed == msg.content, f"streamed {streamed!r} != whole {msg.content!r}")
    check(finish == ["stop"], f"finish reasons {finish}")
    check(usage is not None and usage.total_tokens == u.total_tokens, f"stream usage {usage} vs {u}")
    found["chat"] = {
        "text": msg.content,
        "latency_s": chat_latency,
        "usage": u.total_tokens,
        "chunks": chunks,
        "streamed_equals_whole": streamed == msg.content,
    }

# A wrong key and a revoked key: 401.
for name in ("WRONG_KEY", "REVOKED_KEY"):
    try:
        client(os.environ[name]).embeddings.create(model=model, input=["x"])
        check(False, f"{name} was accepted")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, f"{name}: status {e.status_code}")
        check(e.code == "invalid_api_key", f"{name}: code {e.code}")

# An unknown model: 404.
try:
    good.embeddings.create(model="no-such-model", input=["x"])
    check(False, "an unknown model was accepted")
except openai.NotFoundError as e:
    check(e.code == "model_not_found", f"code {e.code}")

# A spend limit of 1 token: the first request spends it, the next is refused.
capped = client(os.environ["CAPPED_KEY"])
capped.embeddings.create(model=model, input=["spend it"])
try:
    capped.embeddings.create(model=model, input=["one more"])
    check(False, "an exhausted key was accepted")
except openai.APIStatusError as e:
    check(e.status_code in (402, 429), f"status {e.status_code}")
    check(e.code == "insufficient_quota", f"code {e.code}")
    found["exhausted"] = {"status": e.status_code, "class": type(e).__name__}

print(json.dumps(found))
