"""`-o type=docker`: a docker-archive tarball, or (without dest) the local image store and,
when one is present, a running Docker Engine (exporters/docker_engine)."""

from __future__ import annotations

import asyncio

from polybuild.errors import UsageError
from polybuild.exporters.archive import write_docker_archive
from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.base import ExportContext
from polybuild.exporters.destination import check_file_dest, open_file_dest
from polybuild.exporters.docker_engine import detect_engine, load_into_engine
from polybuild.exporters.image_output import store_image
from polybuild.exporters.spec import OutputSpec


class DockerExporter:
    def check(self, output: OutputSpec, context: ExportContext) -> None:
        if output.dest:
            check_file_dest(output.dest, context.stdout)
        elif context.store is None:
            raise UsageError(f"--output: type={output.type} needs the local image store")
        else:
            detect_engine()  # DOCKER_HOST unreachable: fail before building

    async def export(
        self, output: OutputSpec, image: AssembledImage, context: ExportContext
    ) -> str | None:
        if output.dest is None:
            assert context.store is not None  # check()
            await asyncio.to_thread(store_image, context.store, image, output.names)
            loaded = await asyncio.to_thread(load_into_engine, image, output.names)
            return loaded.warning if loaded is not None else None

        def write() -> str | None:
            assert output.dest is not None
            with open_file_dest(output.dest, context.stdout) as stream:
                return write_docker_archive(stream, image, output.names).warning

        return await asyncio.to_thread(write)
