"""Celery: the app built from settings, and thin tasks around tracker functions."""
