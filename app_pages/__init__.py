"""Dashboard pages (run by ``app.py`` through ``st.navigation``) and their shared helpers.

Pages only call ``listenwell.store`` query functions and the pure chart
builders in :mod:`charts`; they hold no SQL and load no models.
"""
