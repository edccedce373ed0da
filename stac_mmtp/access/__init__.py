"""Read a build or a release: search, serve, preview, training loaders."""
