"""Plumbing and contracts shared by the prefshift services. No domain logic lives here."""
