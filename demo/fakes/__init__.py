"""Fake APIs for the collector tests: real HTTP servers on 127.0.0.1."""
