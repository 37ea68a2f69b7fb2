# Answers to the OpenAI-compatible API are reviewed as a kind of their own ("api"), and
# point at their message as chat answers do. Existing items keep their kind.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("review", "0004_reviewitem_prompt")]

    operations = [
        migrations.AlterField(
            model_name="reviewitem",
            name="kind",
            field=models.CharField(
                choices=[
                    ("chat", "chat answer"),
                    ("summary", "document summary"),
                    ("sentiment", "sentiment label"),
                    ("api", "API answer"),
                ],
                max_length=16,
            ),
        ),
        migrations.RemoveConstraint(model_name="reviewitem", name="review_item_points_at_its_output"),
        migrations.AddConstraint(
            model_name="reviewitem",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("kind__in", ("chat", "api")),
                        ("message__isnull", False),
                        ("sentiment_item__isnull", True),
                        ("summary__isnull", True),
                    ),
                    models.Q(
                        ("kind", "summary"),
                        ("message__isnull", True),
                        ("sentiment_item__isnull", True),
                        ("summary__isnull", False),
                    ),
                    models.Q(
                        ("kind", "sentiment"),
                        ("message__isnull", True),
                        ("sentiment_item__isnull", False),
                        ("summary__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="review_item_points_at_its_output",
            ),
        ),
    ]
