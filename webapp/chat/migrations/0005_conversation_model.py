# The chat model a conversation asks for, by its name in the registry. Existing
# conversations get "", which follows the installation's default model: what they were
# answered by before there was a choice.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_conversation_origin"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="model",
            field=models.CharField(blank=True, db_default="", default="", max_length=100),
        ),
    ]
