"""benches/share_binds.sh: a plain Python HTTP server that knows nothing of corral.

    python3 server.py PORT

Binds 127.0.0.1:PORT itself (ThreadingHTTPServer, a thread per connection, HTTP/1.1
keep-alive) and answers every GET with "Hello from worker PID". Tuned as any server meant to
be measured would be, nothing for corral: no request log (it would measure the log pipe); a
listen backlog of 128 rather than socketserver's 5 (a new connection per request would
measure SYN retries); TCP_NODELAY (headers and body are two writes: with Nagle and delayed
ACKs each keep-alive response waits 40 ms); "Connection: close" answered in kind (else wrk
sends its next request on a connection the server closes).
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = f"Hello from worker {os.getpid()}\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
