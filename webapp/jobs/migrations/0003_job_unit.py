from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0002_job_sent_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='job',
            name='unit',
            field=models.CharField(blank=True, max_length=16),
        ),
    ]
