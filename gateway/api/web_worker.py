"""The web server's worker class: gunicorn's gevent pywsgi worker, made so that holding a
connection costs nothing (DESIGN.md, "Guarantees under faults").

Two changes to the stock worker, which let 4,200 connections that sent nothing stop all
traffic:
- A connection must send its request line and headers within
  GATEWAY_HEADER_TIMEOUT_SECONDS of being accepted, or of the end of its previous answer
  (the idle keep-alive wait); otherwise it is closed. One deadline for the whole head,
  so trickling a byte at a time buys nothing. After the head, the same number bounds each
  single wait on the client (a body that stops coming, a client that stops reading), never
  the request as a whole: a slow stream is never cut.
- GUNICORN_WORKER_CONNECTIONS bounds the requests a worker serves at once, not the
  connections it holds: a connection that has not finished its headers takes no request
  slot, so thousands of them never keep a request from being served. Connections are
  bounded by the open-file limit (ulimit -n) and the deadline above.

The Procfile names it: `--worker-class gateway.api.web_worker.HeaderTimeoutWorker`. It lives
outside `console` on purpose: gunicorn imports the worker class before the worker patches
sockets for gevent, and importing `console` starts the Celery app, which reads the settings
then, so they would miss gevent and give the web process no PostgreSQL pool.
"""

import resource

import gevent
from gevent.lock import BoundedSemaphore
from gevent.pool import Pool
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler, PyWSGIServer


class HeadDeadline(gevent.Timeout):
    """The request line and headers did not arrive in time."""


class HeaderTimeoutHandler(PyWSGIHandler):
    _deadline = None

    def read_requestline(self):
        # Waiting for a request: a new connection, or a kept-alive one between requests.
        if self.server.closed:
            return ""  # the worker is stopping: no further request on this connection
        self._deadline = HeadDeadline(self.server.header_timeout)
        self._deadline.start()
        waiting = gevent.getcurrent()
        self.server.awaiting_request.add(waiting)
        try:
            return super().read_requestline()
        finally:
            self.server.awaiting_request.discard(waiting)

    def handle_one_response(self):
        self._deadline.close()  # the head is in: from here on the request and its answer take their time
        with self.server.request_slots:
            super().handle_one_response()

    def handle(self):
        # Every single wait on the client is bounded as well: a body that stops coming, or
        # a client that stops reading its answer, for that long ends the connection. An
        # answer that is slow to come from upstream waits on nothing here, so it goes on.
        self.socket.settimeout(self.server.header_timeout)
        try:
            super().handle()  # closes the connection whichever way it ends
        except HeadDeadline as deadline:
            if deadline is not self._deadline:
                raise
        finally:
            if self._deadline is not None:
                self._deadline.close()


class HeaderTimeoutServer(PyWSGIServer):
    def __init__(self, *args, spawn, **kwargs):
        # Imported here, once the app is loaded: gevent's patching inspects every object a
        # module holds, and touching Django's lazy settings before the app sets them fails.
        from django.conf import settings

        # gunicorn's `spawn` pool is sized GUNICORN_WORKER_CONNECTIONS: it becomes the bound
        # on requests in progress, and connections get a pool as large as the file limit.
        self.request_slots = BoundedSemaphore(spawn.size)
        self.header_timeout = settings.GATEWAY_HEADER_TIMEOUT_SECONDS
        self.awaiting_request = set()  # the greenlets of connections idle between requests
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        connections = spawn.size if open_files == resource.RLIM_INFINITY else max(spawn.size, open_files)
        super().__init__(*args, spawn=Pool(connections), **kwargs)

    def close(self):
        """Stop accepting, and close the connections that wait for a request: a graceful
        stop waits for requests in progress, not for idle clients to leave."""
        super().close()
        for waiting in list(self.awaiting_request):
            waiting.kill(block=False)


class HeaderTimeoutWorker(GeventPyWSGIWorker):
    server_class = HeaderTimeoutServer
    wsgi_handler = HeaderTimeoutHandler
