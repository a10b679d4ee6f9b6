"""Engagement and CRM domain logic: the inbox, replies, escalation rules and SLAs, customer 360,
surveys, segments, KPIs and privacy. SQL lives in ``listenwell.store``; this package decides."""
