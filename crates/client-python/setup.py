"""Builds the package with its gRPC stubs generated from the repository's
proto/ (grpcio-tools at build time): the stubs always match the protos of
the checkout they were built from, and none are checked in. The messages
come with type stubs (`*_pb2.pyi`), and `baton` is marked typed (PEP 561)
like `baton_client`; the service stubs (`*_pb2_grpc.py`) have none."""

import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO = pathlib.Path(__file__).resolve().parent.parent.parent / "proto"


class BuildWithProtos(build_py):
    def run(self):
        out = pathlib.Path(self.build_lib)
        # What an earlier build left (a module since removed, stubs of a
        # proto since deleted) must not ship.
        for package in ("baton", "baton_client"):
            shutil.rmtree(out / package, ignore_errors=True)
        super().run()
        import grpc_tools
        from grpc_tools import protoc

        if not (PROTO / "baton" / "v1").is_dir():
            raise SystemExit(f"baton-client: {PROTO} has no baton/v1 protos: build from the Baton repository")
        files = sorted(str(p.relative_to(PROTO)) for p in (PROTO / "baton" / "v1").glob("*.proto"))
        include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
        code = protoc.main([
            "protoc", f"-I{PROTO}", f"-I{include}",
            f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *files,
        ])
        if code != 0:
            raise SystemExit(f"baton-client: protoc failed ({code})")
        for package in (out / "baton", out / "baton" / "v1"):
            (package / "__init__.py").touch()
        (out / "baton" / "py.typed").touch()


setup(cmdclass={"build_py": BuildWithProtos})
