"""Charts and printable documents made from core results."""
