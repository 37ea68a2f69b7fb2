# A batch stores its classifier's label names, in the classifier's order. Batches made
# before were all labelled by the classifiers Parley had then, whose labels were
# negative, neutral and positive, in that order: they are given those.

from django.db import migrations, models

LABELS_BEFORE = ['negative', 'neutral', 'positive']


def fill_labels(apps, schema_editor):
    SentimentBatch = apps.get_model('sentiment', 'SentimentBatch')
    SentimentBatch.objects.using(schema_editor.connection.alias).update(labels=LABELS_BEFORE)


class Migration(migrations.Migration):

    dependencies = [
        ('sentiment', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='sentimentbatch',
            name='labels',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(fill_labels, migrations.RunPython.noop),
    ]
