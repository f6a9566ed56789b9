"""callbridge: Voys / VoIPGRID call notifications to Slack and Microsoft Teams."""

__version__ = "0.1.0"
