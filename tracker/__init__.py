"""Satisfaction tracker: surveys after solved tickets and running satisfaction scores."""
