"""careerbot: a self-hosted job-alert bot for Slack, Discord and webhooks."""

__version__ = "0.1.0"
