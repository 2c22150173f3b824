"""Reminder emails: their wording, the SMTP transaction, the sending loop."""
