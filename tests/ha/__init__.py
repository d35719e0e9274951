"""High availability: several alertcast processes on one PostgreSQL."""
