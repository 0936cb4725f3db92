"""offline stage."""
