"""A failed playbook's error names the host, the task and why (the task's stderr)."""

from __future__ import annotations

from pathlib import Path

import pytest

from femdc_bench import ansible

OUTPUT = """\
TASK [Wait for the load to end] ************************************************
FAILED - RETRYING: [edge2-node]: Wait for the load to end (317 retries left).
fatal: [edge2-node]: FAILED! =>
    ansible_job_id: j316454925617.4841
    changed: true
    msg: non-zero return code
    rc: 3
    stderr: 'femdc-bench-agent: error: job 0 (Dummy.openstack -> core): no image endpoint
        resolved: the scenario must name ''image'' in its service or uses'
    stderr_lines: <omitted>
    stdout: '{"host": "edge2-node"}'

PLAY RECAP *********************************************************************
"""


def _fail_with(tmp_path: Path, output: str) -> str:
    canned = tmp_path / "out.txt"
    canned.write_text(output)
    with pytest.raises(ansible.AnsibleError) as e:
        ansible._run(["sh", "-c", f"cat {canned}; exit 2"], Path("bench.yml"),
                     tmp_path / "log", {"PATH": "/usr/bin:/bin"}, None)
    return str(e.value)


def test_the_error_says_why(tmp_path: Path) -> None:
    text = _fail_with(tmp_path, OUTPUT)
    assert ("task failed on edge2-node: Wait for the load to end (femdc-bench-agent: error: "
            "job 0 (Dummy.openstack -> core): no image endpoint resolved: the scenario must "
            "name 'image' in its service or uses)") in text


def test_a_meaningful_msg_when_there_is_no_stderr(tmp_path: Path) -> None:
    out = ("TASK [Copy the agent] ***\nfatal: [h1]: FAILED! =>\n    changed: false\n"
           "    msg: 'Destination directory /nope does not exist'\n\nPLAY RECAP ***\n")
    assert "h1: Copy the agent (Destination directory /nope does not exist)" in \
        _fail_with(tmp_path, out)


def test_the_generic_msg_alone_adds_nothing(tmp_path: Path) -> None:
    out = ("TASK [Run] ***\nfatal: [h1]: FAILED! =>\n    msg: non-zero return code\n"
           "    rc: 1\n\nPLAY RECAP ***\n")
    text = _fail_with(tmp_path, out)
    assert "h1: Run" in text and "(non-zero" not in text


# What ansible-core 2.17 prints when a looped task cannot reach its host (captured with
# a closed port): each item's own msg, then the loop's summary, which says nothing.
UNREACHABLE_LOOP = """\
TASK [host : host | work directory of this run] ********************************
failed: [core-ctl] (item=a) =>
    ansible_loop_var: item
    item: a
    msg: 'Failed to connect to the host via ssh: ssh: connect to host 10.231.0.2 port 22:
        Connection refused'
    unreachable: true
fatal: [core-ctl]: UNREACHABLE! =>
    changed: false
    msg: All items completed
    results:
    -   ansible_loop_var: item
        item: a

PLAY RECAP *********************************************************************
"""


def test_a_loop_says_why_its_item_failed(tmp_path: Path) -> None:
    text = _fail_with(tmp_path, UNREACHABLE_LOOP)
    assert ("core-ctl: host : host | work directory of this run (Failed to connect to the "
            "host via ssh: ssh: connect to host 10.231.0.2 port 22: Connection refused)") in text
    assert "All items completed" not in text


def test_ssh_masters_are_per_run(tmp_path: Path) -> None:
    a, b = ansible.control_dir(tmp_path / "r1"), ansible.control_dir(tmp_path / "r2")
    assert a != b and a.parent == b.parent
    # ssh's socket is <dir>/<40 hex> (ansible's %C): it must fit in sun_path (108 bytes)
    assert len(str(a)) + 1 + 40 < 108
    assert ansible.close_connections(tmp_path / "never-ran") == 0


# What ansible-core 2.17 prints for a host that refuses SSH (the static provider's
# reach.yml against a closed port, captured on this machine): msg is a block scalar.
UNREACHABLE_BLOCK = (
    "TASK [reach | SSH and /usr/bin/python3 answer] *****************************\n"
    "ok: [core-ctl]\n"
    "fatal: [edge1-node]: UNREACHABLE! =>\n"
    "    changed: false\n"
    "    msg: |-\n"
    "        Data could not be sent to remote host \"10.231.0.3\". Make sure this host can "
    "be reached over ssh: ssh: connect to host 10.231.0.3 port 2: Connection refused\n"
    "    unreachable: true\n"
    "\n"
    "PLAY RECAP *****************************************************************\n")


def test_an_unreachable_host_says_why(tmp_path: Path) -> None:
    text = _fail_with(tmp_path, UNREACHABLE_BLOCK)
    assert ("task failed on edge1-node: reach | SSH and /usr/bin/python3 answer (Data could "
            "not be sent to remote host \"10.231.0.3\". Make sure this host can be reached "
            "over ssh: ssh: connect to host 10.231.0.3 port 2: Connection refused)") in text
    assert "core-ctl" not in text
