"""The weights: the registry (`registry`: what strcli can use, where it lives, how it is fetched,
imported and checked). It knows names, places, checksums and downloads, and imports no loader:
what a file must hold to be usable is checked above it (`strcli.road.assets`)."""
