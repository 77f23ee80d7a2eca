"""README's Envoy configuration, checked against Envoy's own schema (Envoy's
published protos, PyPI `xds-protos`): every field and every typed_config
must parse as Envoy would read it, and the ext_authz filter must point at the
Baton cluster over gRPC, failing closed.

usage: envoy_config.py
Prints "envoy config: N passed, M failed" last.
"""

import yaml
from checks import check, summary
from envoy.config.bootstrap.v3 import bootstrap_pb2
# Importing them registers the typed_config types the file names.
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format
from readme import snippet

try:
    bootstrap = json_format.ParseDict(yaml.safe_load(snippet("envoy")), bootstrap_pb2.Bootstrap())
    check("the configuration parses as an Envoy bootstrap", True)
    manager = hcm.HttpConnectionManager()
    bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.Unpack(manager)
    authz = ext_authz_pb2.ExtAuthz()
    manager.http_filters[0].typed_config.Unpack(authz)
    check("ext_authz asks the baton cluster over gRPC", authz.grpc_service.envoy_grpc.cluster_name == "baton", authz)
    check("... and fails closed", not authz.failure_mode_allow, authz)
    clusters = {c.name: c for c in bootstrap.static_resources.clusters}
    check("the baton cluster is Baton's gRPC port", clusters["baton"].load_assignment.endpoints[0]
          .lb_endpoints[0].endpoint.address.socket_address.port_value == 7700, clusters["baton"])
except Exception as e:  # noqa: BLE001 - the count must still print
    check("the checks ran to the end", False, repr(e))
summary("envoy config")
