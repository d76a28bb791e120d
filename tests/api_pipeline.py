"""A simulated detection pipeline, run in its own process by tests/test_api.py (so the load
generator does not share the served bot's interpreter): sends MATCHES declarations over HASHES
SHA-256 hashes from THREADS threads, each with an Idempotency-Key, and prints one JSON line per
answer (`[status, number]`).

    python -m tests.api_pipeline BASE_URL TOKEN [MATCHES HASHES THREADS]"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import threading

import httpx


def main(base: str, token: str, matches: int = 1000, hashes: int = 50, threads: int = 4) -> None:
    digests = [hashlib.sha256(f"viral-{i}".encode()).hexdigest() for i in range(hashes)]
    work = [digests[i % hashes] for i in range(matches)]
    random.Random(7).shuffle(work)
    lock = threading.Lock()

    def send(part: list[tuple[int, str]]) -> None:
        with httpx.Client(timeout=60) as client:
            for j, digest in part:
                answer = client.post(base + "/incidents", headers={
                    "Authorization": f"Bearer {token}", "Idempotency-Key": f"match-{j}"},
                    json={"playbook": "viral-spread", "summary": f"PDQ match {j}",
                          "evidence": [{"sha256": digest, "content_id": f"up-{j}", "source": "matcher"}]})
                number = answer.json().get("number") if answer.status_code < 300 else None
                with lock:
                    print(json.dumps([answer.status_code, number]), flush=True)

    items = list(enumerate(work))
    pool = [threading.Thread(target=send, args=(items[k::threads],)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:]))
