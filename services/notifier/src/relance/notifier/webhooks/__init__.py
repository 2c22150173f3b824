"""Partner webhooks: the messages events cause, endpoints, the signed delivery loop."""
