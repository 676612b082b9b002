# Spack recipe for imagefit, for a site package repository.
#
# Spack >= 1.0 (package repository API v2):
#   spack repo create /srv/spack-site site
#   install -D package.py /srv/spack-site/spack_repo/site/packages/py_imagefit/package.py
# Spack 0.x: install -D package.py REPO/packages/py-imagefit/package.py
# then
#   spack install py-imagefit runtimes=podman,apptainer
#   module load py-imagefit     # the module Spack generates puts prefix/bin first on PATH
# or, from a checkout:
#   spack develop --path /path/to/imagefit py-imagefit@main && spack install
#
# The dependencies mirror pyproject.toml's [project.dependencies]
# (tests/test_packaging.py checks them against it). Spack packages that
# Spack's builtin repository lacks (py-structlog in some releases)
# come from a site repository: `spack create --template python URL`.

# ruff: noqa: F403, F405  (Spack's recipe API comes from a star import)

import os

from spack.package import *

try:  # Spack >= 1.0: the build systems live in the builtin repository
    from spack_repo.builtin.build_systems.python import PythonPackage
except ImportError:  # Spack 0.x: spack.package provides PythonPackage
    pass

# shim/install.py RUNTIME_NAMES: the names `imagefit install` can link
RUNTIMES = ("podman", "docker", "apptainer", "singularity", "sarus", "enroot", "ch-image")


class PyImagefit(PythonPackage):
    """Run the best build of an OCI image for this host: a drop-in shim in
    front of podman, apptainer, Sarus and docker that rewrites the image
    operand to the digest of the build that fits the node (CPU target, GPUs,
    MPI), or refuses with a reason where none fits."""

    # imagefit has no public home yet: set these to the repository your site
    # clones imagefit from (or use `spack develop`, above).
    homepage = "https://example.org/imagefit"
    git = "https://example.org/imagefit.git"

    license("Apache-2.0")

    version("main", branch="main")
    # releases are tagged vX.Y.Z; keep this line at pyproject.toml's version
    version("0.1.0", tag="v0.1.0")

    variant(
        "runtimes",
        default="podman",
        values=RUNTIMES,
        multi=True,
        description="runtime names linked to the shim in prefix/bin (only runtimes the nodes have)",
    )

    depends_on("python@3.11:", type=("build", "run"))
    depends_on("py-setuptools@77:", type="build")

    depends_on("py-requests@2.31:2", type=("build", "run"))
    depends_on("py-urllib3@2:2", type=("build", "run"))
    depends_on("py-archspec@0.2.7:0.2", type=("build", "run"))
    depends_on("py-nvidia-ml-py@12:", type=("build", "run"))
    depends_on("py-pydantic@2.5:2", type=("build", "run"))
    depends_on("py-structlog@23:", type=("build", "run"))
    depends_on("py-pyyaml@6:", type=("build", "run"))

    @run_after("install")
    def link_shim(self):
        """`imagefit install --prefix PREFIX --runtime NAME...`: link the shim
        as the chosen runtimes in prefix/bin, which the generated module puts
        on PATH. The runtimes are named, not detected: the build host is not
        the compute nodes."""
        site_packages = join_path(self.prefix, self.spec["python"].package.purelib)
        pythonpath = [site_packages]
        if os.environ.get("PYTHONPATH"):
            pythonpath.append(os.environ["PYTHONPATH"])
        args = ["install", "--prefix", str(self.prefix)]
        for name in self.spec.variants["runtimes"].value:
            args += ["--runtime", name]
        imagefit = Executable(join_path(self.prefix.bin, "imagefit"))
        imagefit(*args, extra_env={"PYTHONPATH": os.pathsep.join(pythonpath)})
