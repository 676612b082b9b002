"""The annotation vocabulary imagefit reads on index descriptors.

Keys live under ``org.supercontainers.`` (the HPC container community's
namespace, see shared/reference/spec-landscape.md section 3). Unknown keys are
ignored, as the OCI image-spec requires (annotations.md).
"""

#: archspec target name the build was compiled for (e.g. ``zen4``, ``x86_64_v3``).
CPU_TARGET = "org.supercontainers.hardware.cpu.target.microarch"
#: compspec's spelling of the same fact; read when CPU_TARGET is absent.
CPU_TARGET_COMPSPEC = "org.supercontainers.hardware.cpu.optimized.version"
#: ``login`` (HPC login container: shell, caller's UID) or ``application``
#: (a service image whose ENTRYPOINT must run).
CONTAINER_KIND = "org.supercontainers.container.kind"

#: Keys that state a requirement on the host (their presence means the index
#: carries compatibility data).
REQUIREMENT_KEYS = frozenset({CPU_TARGET, CPU_TARGET_COMPSPEC})
