"""The scaled stack on one machine: haproxy, 2+ server processes, PostgreSQL, NATS, moto."""
