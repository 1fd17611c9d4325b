"""Tables owned by this service (none yet)."""
