"""Turning variant specs into artifact directories: training, compression, export."""
