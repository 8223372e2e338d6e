# Run by the venv role inside uWSGI (uwsgi --pyrun): the embedded interpreter must be
# femdc_python and see the venv. uwsgi exits 0 even when the script raises: exit 3.
import os
try:
    import socket, ssl, sqlite3  # C modules of the embedded interpreter's stdlib
    import keystone.server, keystoneauth1, pymysql, memcache
    import placement.wsgi, glance.common.wsgi_app, nova.api.openstack.wsgi_app, neutron.server
except BaseException as exc:
    print("femdc self-test failed:", repr(exc), flush=True)
    os._exit(3)
print("femdc self-test ok", flush=True)
os._exit(0)
