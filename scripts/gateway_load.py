"""Load for scripts/gateway-bench.sh: CLIENTS concurrent clients, each sending
REQUESTS embeddings requests one after the other, either through the gateway with
the official openai client (mode "gateway") or as `docker run` of the module's
image (mode "docker"). Prints the median latency in ms and the requests per
second over the whole run, as `p50_ms=... rps=... n=...`.

usage: gateway_load.py gateway BASE_URL API_KEY MODEL CLIENTS REQUESTS
       gateway_load.py docker IMAGE CLIENTS REQUESTS
"""

import json
import statistics
import subprocess
import sys
import threading
import time

TEXTS = [
    "a cat sits on the mat",
    "the quick brown fox jumps over the lazy dog",
    "stock prices fell sharply on tuesday",
    "lilypad runs containerised jobs on other people's GPUs",
]


def gateway_call(base_url, key, model):
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=key, timeout=600, max_retries=0)

    def call():
        r = client.embeddings.create(model=model, input=TEXTS)
        assert len(r.data) == len(TEXTS) and len(r.data[0].embedding) == 384, r

    return call


def docker_call(image):
    env = "TEXTS=" + json.dumps(TEXTS)

    def call():
        out = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--tmpfs", "/outputs", "-e", env, image],
            capture_output=True, text=True, timeout=600,
        )
        if out.returncode != 0:
            raise RuntimeError(f"docker run failed: {out.stderr}")

    return call


def main():
    mode = sys.argv[1]
    if mode == "gateway":
        base_url, key, model, clients, requests = sys.argv[2:7]
        make = lambda: gateway_call(base_url, key, model)  # noqa: E731
    elif mode == "docker":
        image, clients, requests = sys.argv[2:5]
        make = lambda: docker_call(image)  # noqa: E731
    else:
        sys.exit(__doc__)
    clients, requests = int(clients), int(requests)
    latencies, errors, lock = [], [], threading.Lock()

    def worker():
        call = make()
        for _ in range(requests):
            t0 = time.perf_counter()
            try:
                call()
            except Exception as e:  # noqa: BLE001 - reported and counted below
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                latencies.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        sys.exit(f"{len(errors)} of {clients * requests} requests failed, e.g. {errors[0]}")
    print(f"p50_ms={statistics.median(latencies):.0f} rps={len(latencies) / wall:.2f} n={len(latencies)}")


if __name__ == "__main__":
    main()
