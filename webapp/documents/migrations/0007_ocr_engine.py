from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('documents', '0006_collections'),
    ]

    operations = [
        migrations.AddField(
            model_name='document',
            name='ocr_engine',
            field=models.CharField(blank=True, default='', max_length=100),
        ),
    ]
