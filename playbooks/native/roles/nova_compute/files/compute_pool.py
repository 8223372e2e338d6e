"""Run N nova-compute services (fake virt driver) in one supervised process tree.

Nova is imported once, then one child per compute service is forked: each is a real,
separate nova-compute (its own `host`, `state_path`, log file, RabbitMQ connection,
compute node and resource provider), so the control plane sees N compute hosts. The
children share the parent's imported code copy-on-write, which is what makes hundreds
of computes fit on one machine (PSS per compute instead of a whole interpreter each).

    python compute_pool.py --config-file nova.conf --instances instances.json

`instances.json`: [{"host": "edge1-cmp-c001", "config": ".../edge1-cmp-c001.conf",
"state_path": ..., "log_file": ...}, ...]. Before anything starts, the launcher makes each
state directory and writes each `config`, an options file adding `[DEFAULT]
host/state_path/log_file` to the shared nova.conf (done here, not by one ansible task per
compute: that cost ~0.5 s per compute, minutes for hundreds).
SIGTERM (or SIGINT) stops every child (SIGTERM, then SIGKILL after 20 s) and exits.
A child that dies is logged and not restarted: a crashed compute stays down, as it
would on a real host without a supervisor restart policy.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1


def log(msg: str) -> None:
    print(time.strftime("%Y-%m-%d %H:%M:%S"), "compute-pool:", msg, file=sys.stderr,
          flush=True)


def preload() -> None:
    """What each nova-compute would otherwise import or load after the fork, on its own
    pages: the compute manager and the fake driver (loaded by name at service start),
    the versioned objects, the RabbitMQ driver and the entry points that name them. Then
    `gc.freeze()`: the collector never visits (and so never writes to) what exists now,
    so these pages stay shared between the children (copy-on-write)."""
    import gc
    import importlib

    for name in ("nova.compute.manager", "nova.virt.fake", "nova.network.neutron",
                 "nova.scheduler.client.report", "nova.compute.resource_tracker",
                 "oslo_messaging._drivers.impl_rabbit", "keystoneauth1.loading._plugins",
                 "keystoneauth1.loading._plugins.identity.v3"):
        try:
            importlib.import_module(name)
        except ImportError as e:  # a newer Nova moved it: only memory is at stake
            log(f"preload: {name}: {e}")
    from nova import objects

    objects.register_all()
    try:
        from stevedore import ExtensionManager

        for group in ("oslo.messaging.drivers", "keystoneauth1.plugin", "os_vif"):
            ExtensionManager(group, invoke_on_load=False)
    except Exception as e:  # noqa: BLE001 - the children load them anyway
        log(f"preload: entry points: {e}")
    gc.collect()
    gc.freeze()


def write_instance_files(instances: list[dict[str, str]]) -> None:
    """Each compute's state directory (0700) and options file (0644, no secrets)."""
    for inst in instances:
        os.makedirs(inst["state_path"], mode=0o700, exist_ok=True)
        text = (f"[DEFAULT]\nhost = {inst['host']}\nstate_path = {inst['state_path']}\n"
                f"log_file = {inst['log_file']}\n")
        tmp = f"{inst['config']}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("# written by compute_pool.py from instances.json\n" + text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, inst["config"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config-file", required=True)
    ap.add_argument("--instances", required=True)
    ap.add_argument("--stagger", type=float, default=0.2,
                    help="seconds between two starts (the conductor sees a ramp)")
    a = ap.parse_args()
    with open(a.instances) as f:
        instances = json.load(f)
    write_instance_files(instances)

    from nova.cmd import compute  # the expensive import, once, before any fork

    preload()

    libc = ctypes.CDLL(None, use_errno=True)
    children: dict[int, str] = {}
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    for inst in instances:
        if stopping:
            break
        pid = os.fork()
        if pid == 0:  # the child: one nova-compute
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            sys.argv = ["nova-compute", "--config-file", a.config_file,
                        "--config-file", inst["config"]]
            code = 0
            try:
                compute.main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException as e:  # noqa: BLE001 - reported, the child ends
                log(f"{inst['host']}: {type(e).__name__}: {e}")
                code = 1
            os._exit(code)
        children[pid] = inst["host"]
        time.sleep(a.stagger)
    log(f"{len(children)} nova-compute services started")

    # Polled: a blocking waitpid is resumed after the signal handler runs (PEP 475), so
    # SIGTERM would only be seen when a child ends (it was: the launcher waited for the
    # SIGKILL of every teardown, 30 s).
    while children and not stopping:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if not pid:
            time.sleep(0.2)
            continue
        host = children.pop(pid, "?")
        if not stopping:
            log(f"{host} (pid {pid}) ended with status {status}; {len(children)} left")

    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 20
    while children and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            children.pop(pid, None)
        else:
            time.sleep(0.1)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
