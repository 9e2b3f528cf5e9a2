"""Headless test-client helpers: stamped synthetic media for load and end-to-end tests."""
