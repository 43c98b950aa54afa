"""A real Spark standalone cluster on 127.0.0.1, for tests and benchmarks (not a product).

A master and N workers, started with `bin/spark-class` from the pyspark package, each
in its own process group: stopping a daemon's group also stops the executors and
Python workers it started. `standalone_cluster` stops them however its block ends,
and on Linux a daemon also stops when the process that started it is killed.
"""

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def spark_env():
    """Everything on loopback (Spark would otherwise pick the machine's address)."""
    return {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(SPARK_HOME)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def standalone_cluster(root, workers=2, cores=1, memory="2g", timeout=120):
    """Start a master and `workers` workers (`cores` each); yields the master URL.

    Logs go to ROOT/master.log and ROOT/workerI.log; worker I runs its executors
    in ROOT/workerI (each executor's stderr: ROOT/workerI/app-*/ID/stderr).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    port, ui_port = free_port(), free_port()
    daemons = []
    try:
        daemons.append(_start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui_port)],
                              root / "master.log"))
        for i in range(workers):
            daemons.append(_start(
                ["org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
                 "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory,
                 "--webui-port", str(free_port()), "--work-dir", str(root / f"worker{i}")],
                root / f"worker{i}.log"))
        deadline = time.time() + timeout
        while _alive_workers(ui_port) < workers:
            if time.time() > deadline or any(d.poll() is not None for d in daemons):
                logs = "\n".join(p.read_text()[-1500:] for p in sorted(root.glob("*.log")))
                raise RuntimeError(f"the Spark cluster did not start:\n{logs}")
            time.sleep(1)
        yield f"spark://127.0.0.1:{port}"
    finally:
        for daemon in reversed(daemons):
            _stop(daemon)


def _start(args, log):
    with open(log, "w") as out:
        return subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *args],
                                stdout=out, stderr=subprocess.STDOUT, env=spark_env(),
                                start_new_session=True, preexec_fn=_die_with_parent)


def _die_with_parent():
    """Linux: SIGTERM to the daemon if this process dies without stopping it (killed)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(process):
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
            process.wait(wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _alive_workers(ui_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as page:
            return json.load(page)["aliveworkers"]
    except (OSError, ValueError):
        return 0
