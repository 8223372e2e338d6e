"""Metrics: InfluxDB (names, server, client, writer, reader, lineproto) and the host
sampler; one file per job (the former influx.py held server, clients, writer and reader)."""
