"""Outputs -> pictures: the z-buffer rasterizer (`rasterize`) and the overlay videos (`overlay`)."""
