"""Notifications: signed webhooks for job outcomes and low balances, delivered with retries."""
