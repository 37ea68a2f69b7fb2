# Review items point at sentiment items, which moved from the documents app to the
# sentiment app with their table unchanged: only the model state's reference changes
# (the foreign key constraint already points at that table). Nothing is done to the
# database.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('review', '0002_reviewer_group'),
        ('sentiment', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='reviewitem',
                    name='sentiment_item',
                    field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='sentiment.sentimentitem'),
                ),
            ],
            database_operations=[],
        ),
    ]
