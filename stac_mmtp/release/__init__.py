"""Validate a built tree and publish it."""
