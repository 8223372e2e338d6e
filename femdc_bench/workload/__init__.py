"""Workload: scenarios, the runner and the agent that runs them on hosts.

Runs on hosts inside the service venv: this package imports only the standard library,
keystoneauth1/requests (context.py and scenarios/, loaded by the agent) and
femdc_bench.model. The controller uses spec.py (AgentSpec), sink.py (iter_samples) and
sla.py (evaluate), which are standard library only.
"""
