from django.apps import AppConfig

from webapp.core.navigation import NavEntry


class ReviewConfig(AppConfig):
    name = "webapp.review"
    label = "review"
    verbose_name = "Review"

    def nav_entries(self) -> list[NavEntry]:
        from webapp.review.services import can_review  # here, not above: services imports models

        return [
            NavEntry(
                "Review",
                "review:queue",
                "Judge and correct model outputs; export them as datasets.",
                order=40,
                shown_to=can_review,
            )
        ]
