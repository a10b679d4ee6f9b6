"""Named, ordered Alembic migrations of the Listenwell schema."""
