"""femdc-bench: benchmark OpenStack across emulated fog/edge sites."""

__version__ = "0.1.0"
