from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from webapp.accounts.models import User
from webapp.documents.models import Document, Summary


class SummaryForm(forms.Form):
    length = forms.ChoiceField(choices=Summary.Length.choices, initial=Summary.Length.MEDIUM)
    form = forms.ChoiceField(choices=Summary.Form.choices, initial=Summary.Form.PARAGRAPH, label="Form")
    # the registry's models, the installation's summary model first and chosen
    model = forms.ChoiceField(choices=(), required=False, label="Model")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chosen = settings.PARLEY_SUMMARY_MODEL
        names = [chosen, *(name for name in settings.PARLEY_INFERENCE.models.names if name != chosen)]
        model = self.fields["model"]
        assert isinstance(model, forms.ChoiceField)
        model.choices = [(name, name) for name in names]
        model.initial = chosen

    def clean_model(self) -> str:
        return str(self.cleaned_data["model"] or settings.PARLEY_SUMMARY_MODEL)


class CollectionForm(forms.Form):
    """A collection's name and which of ``owner``'s documents it holds."""

    # the name is checked by services.collection_name, which says what is wrong with it
    name = forms.CharField(required=False, strip=False, label="Name")
    documents = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        label="Its documents",
        error_messages={"invalid_choice": "A collection holds only your own documents."},
    )

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        documents = self.fields["documents"]
        assert isinstance(documents, forms.TypedMultipleChoiceField)
        documents.choices = list(Document.objects.filter(owner=owner).order_by("name", "pk").values_list("pk", "name"))
