"""strcli: spatio-temporal tendency reasoning (STR) for 3D human pose and shape from video."""

__version__ = "0.1.0"
