"""Metrics: the one InfluxDB writer/reader (influx.py) and host samplers."""
