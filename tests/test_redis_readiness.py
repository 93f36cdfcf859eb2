"""Under gevent the Redis client checks a pooled connection with the C poll
(billing.redis_pool), and still refuses one that holds an unread reply: a command must
never read the answer to somebody else's.

Run in a child process, because only a web worker patches the standard library."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
from gevent import monkey
monkey.patch_all()
import django
django.setup()
from redis._parsers import hiredis
from billing.redis_pool import get_redis

client = get_redis()
assert getattr(hiredis._socket_can_read, "without_gevent", False), "the C poll was not swapped in"
client.set("mgtest-readiness", "mine")
pool = client.connection_pool
dirty = pool.get_connection()
dirty.send_command("PING")  # its PONG is left unread on the connection
pool.release(dirty)
import gevent
gevent.sleep(0.2)  # the PONG arrives (a reply still on its way cannot be seen by any check)
assert client.get("mgtest-readiness") == "mine", "a command read a reply that was not its own"
client.delete("mgtest-readiness")
print("ok")
"""


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs a real Redis (REDIS_URL)")
def test_a_connection_with_an_unread_reply_is_not_reused_under_gevent():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "REDIS_URL": settings.REDIS_URL,
           "REDIS_MAX_CONNECTIONS": "1"}  # one connection: the dirty one is what the next command gets
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
