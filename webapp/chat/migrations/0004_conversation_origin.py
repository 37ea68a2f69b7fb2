# Where a conversation was started: existing rows, and every row written without it, are
# the chat page's (a database default, so no row is rewritten by hand).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0003_projects_and_pins"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="origin",
            field=models.CharField(
                choices=[("chat", "chat page"), ("api", "API request")], db_default="chat", default="chat", max_length=8
            ),
        ),
    ]
