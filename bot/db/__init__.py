"""Database: typed SQLAlchemy models, the engine, and transactions."""
