"""A stand-in for the weather API the example `weather` tool calls (service/src/tools/weather.rs):
`GET /v1/current?city=NAME` with the key in `x-api-key`, on loopback. It records the
`traceparent` of every request, so a test can check the downstream got the caller's trace.
Standard library only; imports no test module."""
from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_KEY = "e2e-weather-key"


class WeatherApi:
    def __init__(self, server: ThreadingHTTPServer):
        self.url = f"http://127.0.0.1:{server.server_address[1]}/"
        self.traceparents: list[str] = []

    def env(self) -> dict:
        """The service's settings that point the tool here."""
        return {"APP__TOOLS__WEATHER__BASE_URL": self.url, "APP__TOOLS__WEATHER__API_KEY": API_KEY}


@contextlib.contextmanager
def running_weather_api():
    api: WeatherApi | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = urlsplit(self.path)
            api.traceparents.append(self.headers.get("traceparent", ""))
            if parts.path != "/v1/current" or self.headers.get("x-api-key") != API_KEY:
                self.send_response(404 if parts.path != "/v1/current" else 401)
                self.end_headers()
                return
            city = parse_qs(parts.query).get("city", [""])[0]
            body = json.dumps({"city": city, "temperature_c": 12.5, "conditions": "sunny"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api = WeatherApi(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
