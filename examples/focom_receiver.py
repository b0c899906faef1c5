"""An example SMO receiver of FOCOM's notifications: verifies each signature, drops repeats, checks the order.

Run it, subscribe its URL, give it the ``signingSecret`` from the 201 response::

    python examples/focom_receiver.py --port 9099 &
    curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
         -d '{"callback": "http://127.0.0.1:9099/notify"}' "$FOCOM/subscriptions"   # note signingSecret
    FOCOM_SIGNING_SECRET=<signingSecret> python examples/focom_receiver.py --port 9099

A notification whose ``X-Focom-Signature`` is not the HMAC-SHA256 of the raw body under the secret is
refused (401) and not printed. Deliveries are at least once: a repeated ``notificationId`` is
acknowledged and dropped; ``sequence`` numbers each subscription's notifications 1, 2, 3, … so a gap
would show. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock
from typing import Any

MAX_BODY = 1 << 20


def signature_ok(secret_hex: str, raw: bytes, header: str | None) -> bool:
    """True when ``header`` is ``sha256=<hex>`` of the HMAC-SHA256 of ``raw`` under the subscription's secret."""
    if not header or not header.startswith("sha256="):
        return False
    want = hmac.new(bytes.fromhex(secret_hex), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.removeprefix("sha256="), want)


class Receiver:
    def __init__(self, secret_hex: str) -> None:
        self.secret = secret_hex
        self.seen: set[str] = set()
        self.last_sequence: dict[str, int] = {}
        self.lock = Lock()

    def accept(self, raw: bytes, signature: str | None) -> tuple[int, str]:
        if not signature_ok(self.secret, raw, signature):
            return 401, "bad signature"
        note: dict[str, Any] = json.loads(raw)
        with self.lock:
            if note["notificationId"] in self.seen:
                return 204, "repeat dropped"
            self.seen.add(note["notificationId"])
            sub, seq = note["subscriptionId"], int(note["sequence"])
            last = self.last_sequence.get(sub, 0)
            gap = "" if seq == last + 1 else f"  (!) sequence {seq} after {last}"
            self.last_sequence[sub] = max(last, seq)
        phase = note.get("phase") or note.get("provisioningPhase")
        where = f"{note['name']}/{note['cluster']}" if note.get("cluster") else note["name"]
        stage = f" [{note['stage']}]" if note.get("stage") else ""
        print(f"#{seq} {note['kind']} {where}: {phase}{stage} {note.get('message') or ''}{gap}", flush=True)  # noqa: T201 - the output
        return 204, "ok"


def serve(port: int, receiver: Receiver) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            status, _why = receiver.accept(self.rfile.read(length), self.headers.get("X-Focom-Signature"))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:  # quiet: the notifications are the output
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=9099)
    args = p.parse_args()
    secret = os.environ.get("FOCOM_SIGNING_SECRET", "")
    if not secret:
        print("set FOCOM_SIGNING_SECRET to the subscription's signingSecret", file=sys.stderr)  # noqa: T201
        return 2
    serve(args.port, Receiver(secret))
    return 0


if __name__ == "__main__":
    sys.exit(main())
