import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
import pgvector.django.indexes
import pgvector.django.vector
from django.core.exceptions import ImproperlyConfigured
from django.db import migrations, models
from pgvector.django import VectorExtension

from webapp.vector_extension import vector_extension_problem


def require_vector_extension(apps, schema_editor):
    """Stop with the fix named, rather than PostgreSQL's "could not open extension control file"."""
    with schema_editor.connection.cursor() as cursor:
        problem = vector_extension_problem(cursor)
    if problem:
        raise ImproperlyConfigured(problem)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0002_jobs_and_sentiment_move_out"),
    ]

    operations = [
        migrations.RunPython(require_vector_extension, migrations.RunPython.noop, elidable=True),
        VectorExtension(),
        migrations.CreateModel(
            name="Passage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("index", models.PositiveIntegerField()),
                ("start", models.PositiveIntegerField()),
                ("end", models.PositiveIntegerField()),
                ("page", models.PositiveIntegerField(blank=True, null=True)),
                ("heading", models.CharField(blank=True, max_length=300)),
                ("text", models.TextField()),
                ("embedding", pgvector.django.vector.VectorField(dimensions=384)),
                (
                    "search",
                    models.GeneratedField(
                        db_persist=True,
                        expression=django.contrib.postgres.search.SearchVector("text", config="english"),
                        output_field=django.contrib.postgres.search.SearchVectorField(),
                    ),
                ),
                (
                    "document",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="passages", to="documents.document"
                    ),
                ),
            ],
            options={
                "ordering": ["document", "index"],
                "indexes": [
                    pgvector.django.indexes.HnswIndex(
                        ef_construction=64,
                        fields=["embedding"],
                        m=16,
                        name="documents_passage_embedding",
                        opclasses=["vector_cosine_ops"],
                    ),
                    django.contrib.postgres.indexes.GinIndex(fields=["search"], name="documents_passage_search"),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("document", "index"), name="documents_one_passage_per_index")
                ],
            },
        ),
    ]
