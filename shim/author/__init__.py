"""Tools for image authors: publish an index that every site chooses from
correctly (docs/author.md).

* ``imagefit index create`` (:mod:`shim.author.index`): assemble an OCI image
  index from existing images, with the compatibility annotations of
  docs/compatibility.md, and push it;
* ``imagefit attach`` (:mod:`shim.author.attach`): attach an NFD
  image-compatibility artifact to an index or one of its builds;
* ``imagefit lint`` (:mod:`shim.author.lint`): find compatibility data no host
  can satisfy, builds only index order tells apart, unknown keys;
* ``imagefit conform`` (:mod:`shim.author.conform`): check the HPC container
  expectations with the real podman (arbitrary UID, /bin/sh, login shell).

None of this is on the shim's path: the shim never imports this package.
"""
