"""Builds the package with its gRPC stubs generated from the repository's
proto/ (grpcio-tools at build time): the stubs always match the protos of
the checkout they were built from, and none are checked in."""

import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO = pathlib.Path(__file__).resolve().parent.parent.parent / "proto"


class BuildWithProtos(build_py):
    def run(self):
        super().run()
        import grpc_tools
        from grpc_tools import protoc

        if not (PROTO / "baton" / "v1").is_dir():
            raise SystemExit(f"baton-client: {PROTO} has no baton/v1 protos: build from the Baton repository")
        out = pathlib.Path(self.build_lib)
        files = sorted(str(p.relative_to(PROTO)) for p in (PROTO / "baton" / "v1").glob("*.proto"))
        include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
        code = protoc.main(["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *files])
        if code != 0:
            raise SystemExit(f"baton-client: protoc failed ({code})")
        for package in (out / "baton", out / "baton" / "v1"):
            (package / "__init__.py").touch()


setup(cmdclass={"build_py": BuildWithProtos})
