# SentimentBatch and SentimentItem move here from the documents app. Their tables stay
# documents_sentimentbatch and documents_sentimentitem, with their rows, constraints,
# indexes and foreign keys: this migration only tells Django's model state that the
# models are now in the sentiment app (documents 0002 removes them from the documents
# app's state, after review 0003 points review items here). Nothing is done to the
# database.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('jobs', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='SentimentBatch',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=255)),
                        ('source', models.CharField(choices=[('csv', 'CSV file'), ('lines', 'text file, one item a line'), ('paste', 'pasted text')], max_length=16)),
                        ('raw', models.BinaryField()),
                        ('columns', models.JSONField(blank=True, default=list)),
                        ('text_column', models.CharField(blank=True, max_length=255)),
                        ('model_name', models.CharField(blank=True, max_length=200)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('job', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='sentiment_batch', to='jobs.job')),
                        ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sentiment_batches', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'documents_sentimentbatch',
                        'ordering': ['-created_at', '-pk'],
                    },
                ),
                migrations.CreateModel(
                    name='SentimentItem',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('row', models.PositiveIntegerField()),
                        ('text', models.TextField()),
                        ('extra', models.JSONField(blank=True, default=dict)),
                        ('label', models.CharField(blank=True, max_length=16)),
                        ('score', models.FloatField(blank=True, null=True)),
                        ('probabilities', models.JSONField(blank=True, default=dict)),
                        ('needs_review', models.BooleanField(default=False)),
                        ('batch', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='sentiment.sentimentbatch')),
                    ],
                    options={
                        'db_table': 'documents_sentimentitem',
                        'ordering': ['row'],
                        'indexes': [
                            models.Index(fields=['batch', 'label'], name='documents_item_label'),
                            models.Index(fields=['batch', 'score'], name='documents_item_score'),
                        ],
                        'constraints': [
                            models.UniqueConstraint(fields=('batch', 'row'), name='documents_one_item_per_row'),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
