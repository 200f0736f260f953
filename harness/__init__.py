"""xfbench's framework-free core. Importing it loads no ML framework and no Ray."""

__version__ = "0.1.0"
