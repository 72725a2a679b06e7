"""Ingestion into the raw zone: files, HTTP APIs and streams."""
