"""moto_server on a free loopback port, single-threaded.

moto's stock server is threaded, and its DynamoDB is not atomic under concurrent clients (lost
conditional updates, rolled-back transactions). Served by one thread it handles one request at a
time, as DynamoDB serialises writes to one item. Prints the port on its first line of stdout.
"""

import os
import sys
import threading
import time

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

# One request at a time means the others wait in the listen queue: make it deep enough for the
# concurrency tests (hundreds of clients) instead of werkzeug's 128.
BaseWSGIServer.request_queue_size = 4096


class RealS3Roots:
    """moto 5.2 names the root of CompleteMultipartUpload's answer `...Response`; S3 (and so the
    AWS SDK's parser) says `CompleteMultipartUploadResult`. Rename it on the way out."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.app(environ, capture))
        headers = captured["headers"]
        if b"<CompleteMultipartUploadResponse" in body:
            body = body.replace(b"CompleteMultipartUploadResponse", b"CompleteMultipartUploadResult")
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]


def exit_with(parent: int) -> None:
    """Ends this server when the process that started it is gone (a test binary cannot stop the
    server it started when it exits)."""

    def watch() -> None:
        while True:
            try:
                os.kill(parent, 0)
            except OSError:
                os._exit(0)
            time.sleep(1)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    # `--parent PID`: stop when that process ends.
    if len(sys.argv) == 3 and sys.argv[1] == "--parent":
        exit_with(int(sys.argv[2]))
    app = RealS3Roots(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=False)
    print(server.port, flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
