"""Where usage records go: a bounded queue, a batch writer, and SQLite or PostgreSQL tables."""
