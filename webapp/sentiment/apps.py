from __future__ import annotations

from django.apps import AppConfig

from webapp.core.navigation import NavEntry


class SentimentConfig(AppConfig):
    name = "webapp.sentiment"
    label = "sentiment"
    verbose_name = "Sentiment"

    def nav_entries(self) -> list[NavEntry]:
        return [
            NavEntry("Sentiment", "sentiment:index", "Classify many texts at once and export the labels.", order=30)
        ]
