"""Rasters: the one place that writes COGs, geometry and grid helpers."""
