"""Listenwell: an open-source social CRM that runs on your own machine.

Collectors pull brand mentions into the store, NLP stages enrich them, and the
Streamlit dashboard surfaces trends, escalations and feedback reports.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
