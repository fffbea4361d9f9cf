"""Reply parse."""
