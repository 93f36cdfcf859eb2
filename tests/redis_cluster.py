"""A real Redis Cluster of the test's own on loopback: three masters, each with a replica
that a failover test can promote, on ports 7100-7199 (six a test worker, so parallel
workers never meet), AOF on as the deploy docs require."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

NODES = 6  # three masters, three replicas
NODE_TIMEOUT_MS = 1000  # how long a silent master has before its replica takes over


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def first_port() -> int:
    """The first of six free ports (and their cluster bus ports, +10000), starting at this
    test worker's own block, so parallel workers or another run on the machine never meet."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or "0")
    blocks = 100 // NODES
    for block in ((worker + i) % blocks for i in range(blocks)):
        start = 7100 + NODES * block
        if all(_free(p) and _free(p + 10000) for p in range(start, start + NODES)):
            return start
    raise RuntimeError("no six free ports in 7100-7199")


class RedisCluster:
    def __init__(self, directory: str):
        self.directory = directory
        self.ports = [first_port() + i for i in range(NODES)]
        self.processes: dict[int, subprocess.Popen] = {}
        # The masters `--cluster create` makes (the first three), any of which may be killed.
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-replicas", "1",
             "--cluster-yes"], check=True, capture_output=True, timeout=30,
        )
        self.wait_until_ok()

    def start_node(self, port: int) -> None:
        node_dir = os.path.join(self.directory, str(port))
        os.makedirs(node_dir, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-config-file", "nodes.conf",
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--dir", node_dir,
             "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.wait(lambda: self.node(port).ping(), f"node {port} did not start")

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_timeout=2)

    def wait(self, condition, failure: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(failure)
            time.sleep(0.05)

    def wait_until_ok(self) -> None:
        """Every live node sees every slot served."""
        def all_ok():
            return all(self.node(p).execute_command("CLUSTER INFO").get("cluster_state") == "ok"
                       for p in self.processes)
        self.wait(all_ok, "the cluster did not become ok")

    def master_of(self, key: str) -> int:
        alive = self.node(next(iter(self.processes)))
        slot = alive.cluster("KEYSLOT", key)
        for start, end, master, *_ in alive.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise LookupError(slot)

    def replica_of(self, master_port: int) -> int:
        for port in self.processes:
            info = self.node(port).info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == master_port:
                return port
        raise LookupError(master_port)

    def kill(self, port: int) -> None:
        """SIGKILL: the master vanishes mid-traffic, as a crashed host would."""
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def wait_until_master(self, port: int) -> None:
        self.wait(lambda: self.node(port).info("replication")["role"] == "master", f"{port} was not promoted")
        self.wait_until_ok()

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=10)
        self.processes.clear()


@contextlib.contextmanager
def own_redis_cluster():
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        # CI has them (.ci/run): there a missing binary is a failure, not a quiet skip.
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("needs the redis-server and redis-cli binaries")
    directory = tempfile.mkdtemp(prefix="mg-redis-cluster-")
    cluster = RedisCluster(directory)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
