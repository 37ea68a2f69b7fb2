import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0006_search_and_titles'),
        ('documents', '0003_passages'),
    ]

    operations = [
        migrations.CreateModel(
            name='AnswerGrounding',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('mode', models.CharField(choices=[('whole', 'the whole documents'), ('passages', 'the passages found'), ('unsupported', 'no passage answers the question'), ('unread', 'no attached document is read yet')], max_length=16)),
                ('sources', models.JSONField(blank=True, default=list)),
                ('unread', models.JSONField(blank=True, default=list)),
                ('context', models.TextField(blank=True)),
                ('message', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='grounding', to='chat.message')),
            ],
        ),
        migrations.CreateModel(
            name='ConversationDocument',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('conversation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attachments', to='chat.conversation')),
                ('document', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='documents.document')),
            ],
            options={
                'ordering': ['created_at', 'pk'],
                'constraints': [models.UniqueConstraint(fields=('conversation', 'document'), name='chat_one_attachment_per_document')],
            },
        ),
    ]
