#!/usr/bin/env python3
"""A small webhook receiver for `tuskd serve --hooks-http http://127.0.0.1:8000/`.

pre-create: rejects uploads without `Authorization: Bearer $HOOK_BEARER_TOKEN`.
post-*: logs each event once, dropping redeliveries by their `Tuskd-Event-Id`.
Standard library only: python3 receiver.py [--port 8000]
"""
import argparse
import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

seen = set()


class Hooks(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            hook = json.loads(body)
            kind, event = hook["Type"], hook["Event"]
        except (ValueError, KeyError):
            return self.answer(400, {})
        if kind == "pre-create":
            token = os.environ.get("HOOK_BEARER_TOKEN", "")
            given = (event["HTTPRequest"]["Header"].get("Authorization") or [""])[0]
            if not token or not hmac.compare_digest(given, "Bearer " + token):
                return self.answer(200, {
                    "RejectUpload": True,
                    "HTTPResponse": {"StatusCode": 401, "Body": "a valid bearer token is required\n"},
                })
            return self.answer(200, {})
        event_id = self.headers.get("Tuskd-Event-Id")
        if event_id not in seen:
            seen.add(event_id)
            upload = event["Upload"]
            print(f"{kind} {upload['ID']} {upload['Offset']}/{upload['Size']}", flush=True)
        self.answer(200, {})

    def answer(self, status, response):
        data = json.dumps(response).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Hooks)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()
