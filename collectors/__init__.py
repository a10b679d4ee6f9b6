"""Collectors: pull brand mentions and reviews from their sources into the store.

Collectors never write SQL: they yield records, and ``listenwell.store`` writes them.
"""
