"""Published facts shipped with the package: data manifests (checksums) and, later, paper numbers."""
