#!/usr/bin/python3
# Register OpenStack services in a Keystone, idempotently, over its REST API (urllib
# only: the module runs with the host's /usr/bin/python3). For each service: the
# `service` project, a service user with its password and the admin and service roles
# on that project (service tokens need `service`), the catalog service (by type) and its
# public/internal/admin endpoints in one region. Existing objects are kept; a user's
# password is reset to the given one; an endpoint whose URL differs is updated. Passwords come in module arguments with
# no_log and never reach a command line.
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: femdc_keystone_catalog
short_description: ensure service users, catalog services and endpoints in a Keystone
options:
  auth_url: {type: str, required: true, description: "Keystone v3 URL, e.g. http://10.0.0.2:5000/v3"}
  admin_password: {type: str, required: true, no_log: true}
  ca_file: {type: str, required: false, description: "CA bundle an https auth_url is verified with"}
  region: {type: str, required: true}
  services:
    type: list
    elements: dict
    required: true
    description: "[{name, type, url, user, password, description}] (user/password optional)"
"""


class Keystone:
    def __init__(self, url: str, password: str, ca_file: str | None = None) -> None:
        self.url = url.rstrip("/")
        # https: verified against ca_file (the run's CA) or the system's bundle
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        resp = self._call("POST", "/auth/tokens", body, token=None, want_headers=True)
        self.token = resp[1]["X-Subject-Token"]
        self.changed = False

    def _call(self, method: str, path: str, body: Any = None, *, token: str | None = "",
              want_headers: bool = False) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("X-Auth-Token", token or self.token)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.context))
        last: Exception | None = None
        for _ in range(5):
            try:
                with opener.open(req, timeout=30) as r:
                    raw = r.read()
                    doc = json.loads(raw) if raw else {}
                    return (doc, dict(r.headers)) if want_headers else doc
            except urllib.error.HTTPError as e:
                if e.code < 500:
                    raise RuntimeError(f"{method} {path}: HTTP {e.code}: "
                                       f"{e.read()[:300].decode(errors='replace')}") from None
                last = e
            except OSError as e:
                last = e
        raise RuntimeError(f"{method} {path}: {last}")

    def find(self, collection: str, key: str, **params: str) -> dict[str, Any] | None:
        query = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in params.items())
        items = self._call("GET", f"/{collection}?{query}")[key]
        return items[0] if items else None

    def ensure(self, collection: str, key: str, match: dict[str, str],
               body: dict[str, Any]) -> dict[str, Any]:
        found = self.find(collection, collection.split("/")[-1], **match)
        if found:
            return found
        try:
            created = self._call("POST", f"/{collection}", {key: body})[key]
        except RuntimeError as e:  # created meanwhile by another host: use that one
            found = self.find(collection, collection.split("/")[-1], **match)
            if "HTTP 409" in str(e) and found:
                return found
            raise
        self.changed = True
        return created


def main() -> None:
    module = AnsibleModule(argument_spec={
        "auth_url": {"type": "str", "required": True},
        "admin_password": {"type": "str", "required": True, "no_log": True},
        "region": {"type": "str", "required": True},
        "ca_file": {"type": "str", "required": False},
        "services": {"type": "list", "elements": "dict", "required": True},
    })
    p = module.params
    # Every password is masked in whatever the module returns (also on failure), so
    # the task needs no no_log and its errors stay readable.
    for svc in p["services"]:
        if svc.get("password"):
            module.no_log_values.add(svc["password"])
    try:
        ks = Keystone(p["auth_url"], p["admin_password"], p.get("ca_file"))
        roles = [ks.find("roles", "roles", name=n) for n in ("admin", "service")]
        if None in roles:
            raise RuntimeError("roles 'admin' and 'service' not found (Keystone not "
                               "bootstrapped?)")
        project = ks.ensure("projects", "project", {"name": "service", "domain_id": "default"},
                            {"name": "service", "domain_id": "default",
                             "description": "OpenStack service users"})
        regions = [r["id"] for r in ks._call("GET", "/regions")["regions"]]
        if p["region"] not in regions:
            ks._call("POST", "/regions", {"region": {"id": p["region"]}})
            ks.changed = True
        for svc in p["services"]:
            user_name, password = svc.get("user"), svc.get("password")
            if user_name:
                user = ks.find("users", "users", name=user_name, domain_id="default")
                if user is None:
                    user = ks._call("POST", "/users", {"user": {
                        "name": user_name, "domain_id": "default", "password": password,
                        "default_project_id": project["id"]}})["user"]
                    ks.changed = True
                else:  # the run's password, whatever an earlier deploy set
                    ks._call("PATCH", f"/users/{user['id']}",
                             {"user": {"password": password}})
                for role in roles:  # admin, and service for service tokens
                    ks._call("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/"
                             f"{role['id']}")
            service = ks.ensure("services", "service", {"type": svc["type"]},
                                {"name": svc["name"], "type": svc["type"],
                                 "description": svc.get("description", svc["name"])})
            existing = ks._call("GET", f"/endpoints?service_id={service['id']}"
                                       f"&region_id={urllib.request.quote(p['region'])}")
            by_iface = {e["interface"]: e for e in existing["endpoints"]}
            for iface in ("public", "internal", "admin"):
                ep = by_iface.get(iface)
                if ep is None:
                    ks._call("POST", "/endpoints", {"endpoint": {
                        "service_id": service["id"], "interface": iface, "url": svc["url"],
                        "region_id": p["region"], "enabled": True}})
                    ks.changed = True
                elif ep["url"] != svc["url"]:
                    ks._call("PATCH", f"/endpoints/{ep['id']}", {"endpoint": {"url": svc["url"]}})
                    ks.changed = True
    except RuntimeError as e:
        module.fail_json(msg=str(e))
    module.exit_json(changed=ks.changed)


if __name__ == "__main__":
    main()
