"""Who wrote a conversation's title (``title_source``), so that the model's title never
overwrites one the user chose.

Every conversation that has a title when this runs counts as titled by its user: nothing
tells a first-words title from one the user typed, and taking a user's for a fallback
would let the model overwrite it. Only untitled ones are left to the fallback.
"""

from django.db import migrations, models


def untitled_are_fallback(apps, schema_editor):  # type: ignore[no-untyped-def]
    Conversation = apps.get_model("chat", "Conversation")
    Conversation.objects.filter(title="").update(title_source="fallback")


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0002_sharedconversation"),
    ]

    operations = [
        # existing rows are filled with "user"; new rows get the default set next
        migrations.AddField(
            model_name="conversation",
            name="title_source",
            field=models.CharField(
                choices=[("fallback", "Fallback"), ("model", "Model"), ("user", "User")], default="user", max_length=16
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="conversation",
            name="title_source",
            field=models.CharField(
                choices=[("fallback", "Fallback"), ("model", "Model"), ("user", "User")],
                default="fallback",
                max_length=16,
            ),
        ),
        migrations.RunPython(untitled_are_fallback, migrations.RunPython.noop),
    ]
