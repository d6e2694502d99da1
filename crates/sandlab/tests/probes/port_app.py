# A web server for the port proxy's tests, run inside a sandbox: `python3 port_app.py PORT`.
# Every request line is appended to /tmp/requests.log, so a test can see from outside what
# reached the sandbox.
import base64
import hashlib
import http.server
import json
import socketserver
import sys
import time

HOSTILE = b"""<!doctype html><title>hostile</title><body><pre id=out>running</pre><script>
(async () => {
  const ui = new URLSearchParams(location.search).get('ui') || '';
  const r = {cookie: document.cookie};
  try {
    const a = await fetch(ui + '/api/v1/sandboxes', {credentials: 'include'});
    r.api = a.status + ' ' + (await a.text()).slice(0, 200);
  } catch (e) { r.api = 'blocked: ' + e; }
  try {
    const csrf = (document.cookie.match(/sandlab_csrf=([^;]+)/) || [])[1] || '';
    const p = await fetch(ui + '/api/v1/sandboxes', {method: 'POST', credentials: 'include',
      headers: {'content-type': 'application/json', 'x-csrf-token': csrf}, body: '{}'});
    r.post = p.status + ' ' + (await p.text()).slice(0, 200);
  } catch (e) { r.post = 'blocked: ' + e; }
  try {
    const same = await fetch('/api/v1/sandboxes', {credentials: 'include'});
    r.same_origin = same.status + ' ' + (await same.text()).slice(0, 200);
  } catch (e) { r.same_origin = 'blocked: ' + e; }
  document.getElementById('out').textContent = JSON.stringify(r);
  document.title = 'done';
})();
</script>"""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        with open("/tmp/requests.log", "a") as f:
            f.write(self.requestline + "\n")

    def reply(self, code, body, ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path
        if path.startswith("/headers"):
            seen = {k.lower(): v for k, v in self.headers.items()}
            seen["_peer"] = str(self.client_address[1])
            body = json.dumps(seen).encode()
            self.reply(200, body, "application/json")
        elif path.startswith("/slow"):
            time.sleep(2)
            self.reply(200, b"slow\n")
        elif path.startswith("/never"):
            time.sleep(3600)
        elif path.startswith("/big"):
            n = int(path.split("=", 1)[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"\0" * 262144
            sent = 0
            while sent < n:
                k = min(len(chunk), n - sent)
                self.wfile.write(chunk[:k])
                sent += k
        elif path.startswith("/cookies"):
            self.reply(200, b"cookies\n", extra=[
                ("Set-Cookie", "sandlab_session=planted; Path=/"),
                ("Set-Cookie", "sandlab_csrf=planted; Path=/"),
                ("Set-Cookie", "app=1; Path=/"),
            ])
        elif path.startswith("/redirect"):
            self.reply(302, b"", extra=[("Location", "/landed")])
        elif path.startswith("/hostile"):
            self.reply(200, HOSTILE, "text/html")
        elif path.startswith("/ws"):
            self.websocket()
        else:
            self.reply(200, b"hello from the sandbox\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self.reply(200, f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode())

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        r, w = self.rfile, self.wfile
        while True:
            head = r.read(2)
            if len(head) < 2:
                break
            op, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(r.read(2), "big")
            elif n == 127:
                n = int.from_bytes(r.read(8), "big")
            mask = r.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(r.read(n)))
            if op == 8:
                w.write(b"\x88\x00")
                w.flush()
                break
            if op == 9:
                op = 10
            out = bytearray([0x80 | op])
            if len(data) < 126:
                out.append(len(data))
            elif len(data) < 65536:
                out.append(126)
                out += len(data).to_bytes(2, "big")
            else:
                out.append(127)
                out += len(data).to_bytes(8, "big")
            w.write(bytes(out) + data)
            w.flush()
        self.close_connection = True


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
