"""Adapters to AWS services and outside systems."""
