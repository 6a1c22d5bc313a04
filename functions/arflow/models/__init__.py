"""Pydantic models: documents that come in, records that are stored, messages that go out."""
