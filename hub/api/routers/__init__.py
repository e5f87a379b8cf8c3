"""One router per resource of the operators' API (mounted under /api/v1)."""
