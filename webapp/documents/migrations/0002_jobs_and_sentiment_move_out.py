# Job moves to the jobs app, SentimentBatch and SentimentItem to the sentiment app
# (jobs 0001, sentiment 0001 add them to those apps' state; review 0003 points review
# items at the new SentimentItem). Here they leave the documents app's state, and the
# summary's job points at jobs.Job: all state only, since the tables keep their names
# and rows. Then the content types are renamed, so that permissions and admin history
# follow the models to their new apps.

import django.db.models.deletion
from django.db import migrations, models

MOVED = [('job', 'jobs'), ('sentimentbatch', 'sentiment'), ('sentimentitem', 'sentiment')]


def _move_content_types(apps, schema_editor, *, backwards):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    content_types = ContentType.objects.using(schema_editor.connection.alias)
    for model, new_app in MOVED:
        old_app, new_app = (new_app, 'documents') if backwards else ('documents', new_app)
        if not content_types.filter(app_label=old_app, model=model).exists():
            continue  # a new database: the content types are made after migrating
        # A row under the new name exists only where Django made it, with its default
        # permissions, after an earlier run had applied the other app's migration; the
        # old row is the one that permissions given and admin history point at.
        content_types.filter(app_label=new_app, model=model).delete()
        content_types.filter(app_label=old_app, model=model).update(app_label=new_app)


def move_content_types(apps, schema_editor):
    _move_content_types(apps, schema_editor, backwards=False)


def move_content_types_back(apps, schema_editor):
    _move_content_types(apps, schema_editor, backwards=True)


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('documents', '0001_initial'),
        ('jobs', '0001_initial'),
        ('sentiment', '0001_initial'),
        ('review', '0003_sentiment_item_in_sentiment_app'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='summary',
                    name='job',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='summary', to='jobs.job'),
                ),
                migrations.DeleteModel(name='SentimentItem'),
                migrations.DeleteModel(name='SentimentBatch'),
                migrations.DeleteModel(name='Job'),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
