"""Integration tests use the session fixtures of tests/conftest.py (pg_server_url,
kafka_bootstrap, fresh_database, migrated_database, saga_env)."""
