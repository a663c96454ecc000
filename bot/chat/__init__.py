"""Chat adapters: each turns a rendered alert into one platform call. No business logic."""

# What Slack (Web API and incoming webhooks) answers for a message whose blocks or size it
# refuses, and Discord's code for a message body it refuses: the alert is then sent again
# as its plain text alone.
SLACK_REFUSED_LAYOUT = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long"})
DISCORD_INVALID_FORM_BODY = 50035
