from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('documents', '0003_passages'),
    ]

    operations = [
        migrations.AddField(
            model_name='document',
            name='ocr_pages',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AlterField(
            model_name='document',
            name='kind',
            field=models.CharField(choices=[('text', 'plain text'), ('markdown', 'Markdown'), ('html', 'HTML'), ('pdf', 'PDF'), ('docx', 'Word document'), ('csv', 'CSV'), ('image', 'image (PNG or JPEG)')], max_length=16),
        ),
    ]
