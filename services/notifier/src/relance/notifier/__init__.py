"""relance-notifier: Renders and sends reminder emails over SMTP, and delivers partner webhooks."""
