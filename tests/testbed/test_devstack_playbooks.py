"""playbooks/devstack/ for real, short of DevStack itself (no opendev, no testbed here).

deploy.yml, check.yml and destroy.yml run with a local connection inside a mount
namespace whose /etc and /opt are private copies (the stack user, its sudoers file and
/opt/stack never reach this machine), against a fake DevStack repository whose stack.sh
checks what the real one needs from the playbook (run as the stack user, passwordless
sudo, local.conf 0600 with a [[local|localrc]] part) and leaves what the later plays
read (DevStack's venv with `openstack` and `nova-manage`). Root, unshare, sudo and
setfacl (acl) needed; ~1 min. `tox -e testbed` or
    python -m pytest -m testbed tests/testbed/test_devstack_playbooks.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from femdc_bench.deploy import devstack
from femdc_bench.experiment import parse
from femdc_bench.model import Host, Inventory

pytestmark = pytest.mark.testbed

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks" / "devstack"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

FAKE_STACK = r"""#!/bin/bash
set -e
[ "$(id -un)" = stack ] || { echo "[ERROR] run as $(id -un), not stack"; exit 1; }
[ "$(stat -c %a local.conf)" = 600 ] || { echo "[ERROR] local.conf is not 0600"; exit 1; }
grep -q '^\[\[local|localrc\]\]' local.conf || { echo "[ERROR] no localrc"; exit 1; }
sudo -n true || { echo "[ERROR] no passwordless sudo"; exit 1; }
touch .stackenv
mkdir -p /opt/stack/data/venv/bin
echo "stack.sh $(sha1sum local.conf)" >> /opt/stack/logs/stack.sh.log.1
ln -sf /opt/stack/logs/stack.sh.log.1 /opt/stack/logs/stack.sh.log
if grep -q FAIL_ME local.conf; then
  echo "[ERROR] /opt/stack/devstack/lib/nova:1 nova did not start"; echo "stack.sh failed"
  exit 1
fi
cat > /opt/stack/data/venv/bin/openstack <<'X'
#!/bin/sh
case "$*" in
  *"compute service list"*) echo '[{"Host":"h1","State":"up","Status":"enabled"}]';;
  *"hypervisor list"*) echo '[{"ID":1}]';;
  *) exit 1;;
esac
X
printf '#!/bin/sh\necho "$(id -un) $*" >> /opt/stack/logs/discover.log\n' \
  > /opt/stack/data/venv/bin/nova-manage
chmod +x /opt/stack/data/venv/bin/*
echo "stack.sh completed"
"""


def _need(cond: bool, why: str) -> None:
    if not cond:
        pytest.skip(why)


@pytest.fixture
def work() -> Iterator[Path]:
    _need(os.geteuid() == 0, "needs root (mount namespace, useradd)")
    tools = {"unshare": "util-linux", "sudo": "sudo", "setfacl": "acl", "git": "git"}
    missing = sorted({pkg for tool, pkg in tools.items() if shutil.which(tool) is None})
    if missing:  # Debian's packages, as the VM test installs its own
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       env=env, check=True, timeout=900)
    for tool in tools:
        _need(shutil.which(tool) is not None, f"needs {tool} (apt-get install {tools[tool]})")
    d = Path(tempfile.mkdtemp(prefix="femdc-devstack-"))
    d.chmod(0o755)  # the stack user clones the fake repository from here
    try:
        yield d
    finally:
        shutil.rmtree(d)


def _fake_repo(work: Path) -> Path:
    src = work / "src"
    src.mkdir()
    (src / "stack.sh").write_text(FAKE_STACK)
    (src / "unstack.sh").write_text('#!/bin/bash\necho "unstack $(id -un)" >> '
                                    "/opt/stack/logs/unstack.log\n")
    (src / "clean.sh").write_text('#!/bin/bash\necho "clean $(id -un)" >> '
                                  "/opt/stack/logs/clean.log\nexit 3\n")
    for f in src.iterdir():
        f.chmod(0o755)
    git = ["git", "-C", str(src), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "master", str(src)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fake devstack"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(work / "devstack.git")],
                   check=True)
    return work / "devstack.git"


def _render(work: Path, extra: dict[str, str]) -> None:
    doc = {"name": "x",
           "sites": [{"name": "core", "hosts": [{"name": "ctl", "roles": [
               "database", "keystone", "control", "compute", "load"]}]}],
           "deployment": {"method": "devstack", "release": "2025.1",
                          "keystone": {"centralized": "core"}, "control": "per_site",
                          "devstack": {"extra_localrc": extra}},
           "workload": {"scenarios": [{"name": "keystone.authenticate",
                                       "runner": {"type": "times", "times": 1}}]}}
    exp = parse(doc)
    inv = Inventory("static", (Host("core-ctl", "127.0.0.1", "core", exp.sites[0].hosts[0]
                                    .roles),))
    secrets = {"admin": "a" * 12, "db_root": "b" * 12, "rabbit": "c" * 12, "service": "d" * 12}
    devstack.write_local_confs(work / "results", devstack.render(exp, inv, secrets))


def _run(work: Path, *playbooks: str) -> list[tuple[int, str]]:
    """Each playbook in one mount namespace with /etc and /opt private: (rc, output)."""
    (work / "hosts.ini").write_text(textwrap.dedent("""\
        [keystone]
        core-ctl
        [control]
        core-ctl
        [compute]
        core-ctl
        [all:vars]
        ansible_connection=local
        ansible_python_interpreter=/usr/bin/python3
        femdc_address=127.0.0.1
        femdc_region=core
        femdc_region_computes=1
        femdc_devstack=true
        """))
    (work / "vars.json").write_text(json.dumps({
        "femdc_run": "r1", "femdc_results_dir": str(work / "results"),
        "femdc_devstack_conf_dir": str(work / "results" / "devstack"),
        "femdc_devstack_repo": str(work / "devstack.git"), "femdc_devstack_ref": "master",
        "femdc_devstack_user": "stack", "femdc_devstack_timeout_s": 20}))
    script = textwrap.dedent(f"""\
        set -e
        mount --make-rprivate /
        [ -d {work}/etc ] || cp -a /etc {work}/etc
        mkdir -p {work}/opt
        mount --bind {work}/etc /etc
        mount --bind {work}/opt /opt
        # the fake repository belongs to root, the clone is the stack user's
        git config --system --replace-all safe.directory '*'
        pb=$1; shift
        exec {ANSIBLE_PLAYBOOK} -i {work}/hosts.ini -e @{work}/vars.json "$pb"
        """)
    env = {**os.environ, "ANSIBLE_PIPELINING": "True", "ANSIBLE_NOCOLOR": "True",
           "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml", "ANSIBLE_RETRY_FILES_ENABLED": "False"}
    out = []
    for pb in playbooks:
        p = subprocess.run(["unshare", "-m", "bash", "-c", script, "ns", str(PLAYBOOKS / pb)],
                           capture_output=True, text=True, env=env, timeout=600)
        out.append((p.returncode, p.stdout + p.stderr))
    return out


def _task_status(output: str, task: str) -> str:
    """The status line after TASK [task] (ok, changed, skipping, fatal...)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"TASK [{task}"):
            for nxt in lines[i + 1:]:
                if nxt.strip():
                    return nxt.split(":")[0]
    return "absent"


def test_deploy_redeploy_change_failure_destroy(work: Path) -> None:
    _fake_repo(work)
    opt = work / "opt" / "stack"
    stack_task = "devstack | stack.sh (output"

    _render(work, {})
    [(rc, out)] = _run(work, "deploy.yml")
    assert rc == 0, out[-3000:]
    assert _task_status(out, stack_task) in ("changed", "ASYNC OK on core-ctl")
    assert (opt / ".femdc-stacked").exists()
    assert oct((opt / "devstack" / "local.conf").stat().st_mode & 0o777) == "0o600"
    assert (opt / "logs" / "discover.log").read_text().split() == [
        "stack", "cell_v2", "discover_hosts"]
    logs = work / "results" / "logs" / "devstack" / "core-ctl"
    assert (logs / "stack.sh.log").read_text().startswith("stack.sh ")
    assert (logs / "femdc-stack.out").read_text().strip() == "stack.sh completed"
    commits = json.loads((work / "results" / "devstack" / "versions" / "core-ctl.json")
                         .read_text())
    assert list(commits) == ["devstack"] and len(commits["devstack"]) == 40
    assert devstack.host_commits(work / "results") == {"devstack.commit": commits["devstack"]}

    # the same local.conf and commit: nothing runs again
    [(rc, out)] = _run(work, "deploy.yml")
    assert rc == 0, out[-3000:]
    assert _task_status(out, stack_task) == "skipping"
    assert len((opt / "logs" / "stack.sh.log.1").read_text().splitlines()) == 1

    # another local.conf: unstack.sh, then stack.sh
    _render(work, {"GIT_BASE": "https://github.com"})
    [(rc, out)] = _run(work, "deploy.yml")
    assert rc == 0, out[-3000:]
    assert (opt / "logs" / "unstack.log").read_text().split() == ["unstack", "stack"]
    assert len((opt / "logs" / "stack.sh.log.1").read_text().splitlines()) == 2

    # a failing stack.sh: one message with its error line; no marker; logs fetched
    _render(work, {"FAIL_ME": "1"})
    [(rc, out)] = _run(work, "deploy.yml")
    assert rc != 0
    assert "stack.sh failed on core-ctl" in out
    assert "[ERROR] /opt/stack/devstack/lib/nova:1 nova did not start" in out
    assert not (opt / ".femdc-stacked").exists()
    assert "nova did not start" in (logs / "femdc-stack.out").read_text()

    # destroy: unstack.sh and clean.sh (whose failure is not fatal), marker gone
    [(rc, out)] = _run(work, "destroy.yml")
    assert rc == 0, out[-3000:]
    assert (opt / "logs" / "clean.log").read_text().split() == ["clean", "stack"]


def test_destroy_without_devstack_succeeds(work: Path) -> None:
    [(rc, out)] = _run(work, "destroy.yml")
    assert rc == 0, out[-3000:]
    assert _task_status(out, "destroy | unstack.sh") == "skipping"
