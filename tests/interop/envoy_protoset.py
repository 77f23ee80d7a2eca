"""Writes a protoset (a FileDescriptorSet) for Envoy's ext_authz service from
Envoy's published protos (PyPI `xds-protos`), for gRPC tools that take one
(ghz --protoset): Baton does not serve Envoy's schema through reflection.

usage: envoy_protoset.py OUT_FILE
"""

import sys

from envoy.service.auth.v3 import external_auth_pb2
from google.protobuf import descriptor_pb2


def collect(file, seen: set, out: descriptor_pb2.FileDescriptorSet) -> None:
    if file.name in seen:
        return
    seen.add(file.name)
    for dependency in file.dependencies:
        collect(dependency, seen, out)
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    out.file.append(proto)


protoset = descriptor_pb2.FileDescriptorSet()
collect(external_auth_pb2.DESCRIPTOR, set(), protoset)
with open(sys.argv[1], "wb") as f:
    f.write(protoset.SerializeToString())
