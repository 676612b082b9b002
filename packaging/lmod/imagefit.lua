-- Lmod modulefile for imagefit: puts the imagefit shim (linked as podman,
-- docker, apptainer, singularity, sarus, enroot, ch-image by `imagefit install --prefix PREFIX`)
-- first on PATH, so `podman run IMAGE` starts the best build of IMAGE for
-- this node.
--
-- Install: copy to a MODULEPATH directory as imagefit/<version>.lua, e.g.
--   install -D -m 0644 imagefit.lua /opt/modulefiles/imagefit/0.1.0.lua
-- and set `prefix` below to the DIR given to `imagefit install --site --prefix DIR`
-- (docs/admin.md; DIR/bin holds only the shim's links):
--   sed -i 's|^local prefix = .*|local prefix = "/apps/imagefit"|' 0.1.0.lua
-- The RPM (packaging/rpm) ships this file with prefix /opt/imagefit.
-- The prefix is fixed in the file, not read from the environment, so that
-- `module unload` removes exactly the directory `module load` added.

local prefix = "/opt/imagefit"

help([[
imagefit: run the best build of an OCI image for this node.

Loading this module puts ]] .. pathJoin(prefix, "bin") .. [[ first on PATH.
There the imagefit shim stands in for podman (and docker, apptainer,
singularity, sarus, enroot, ch-image where linked): `podman run IMAGE` picks the build of IMAGE
that fits this node's CPU and GPUs, or refuses with a reason (exit 125).

  imagefit doctor         is the shim first on PATH, which runtime is behind it
  imagefit facts          what this node is
  imagefit explain IMAGE  which build this node gets, and why
  IMAGEFIT_DISABLE=1      plain pass-through to the real runtime
]])

whatis("Name: imagefit")
whatis("Description: run the best build of an OCI image for this node (a shim in front of podman, apptainer, Sarus, docker)")

-- priority keeps this entry ahead of bin directories that modules loaded
-- later prepend (a podman or apptainer module): the shim must come first.
prepend_path{"PATH", pathJoin(prefix, "bin"), priority = 100}
