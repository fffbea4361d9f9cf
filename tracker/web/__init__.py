"""The Flask app for people and senders: survey pages, the leads' API, the dashboard, probes."""
