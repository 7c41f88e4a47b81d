"""Helpers the tests share: factories, scratch databases and servers, load and round-trip probes."""
