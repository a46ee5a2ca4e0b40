"""The standing reliability suite (`make reliability`): checks against real servers and stores.

Not part of `make test`: each check runs for minutes, drives real uvicorn servers, SQLite,
PostgreSQL and Redis on loopback, and reports figures against targets (docs/reliability.md).
"""
