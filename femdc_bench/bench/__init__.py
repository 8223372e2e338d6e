"""The controller's side of a bench (runs on the machine that runs femdc-bench).

controller.py: the bench phase of a run (clear, plan, run, store); plan.py: what each
host does (agent specs, sampler configurations); hosts.py: driving the hosts, one SSH
session each to the bench daemon there. The hosts' side is femdc_bench/workload/
(host_daemon.py: the bench daemon and its sessions; agent.py: one host's jobs; runner.py:
timing one operation)."""
