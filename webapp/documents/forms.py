from __future__ import annotations

from typing import Any

from django import forms

from webapp.accounts.models import User
from webapp.documents.models import Document, Summary


class SummaryForm(forms.Form):
    length = forms.ChoiceField(choices=Summary.Length.choices, initial=Summary.Length.MEDIUM)
    form = forms.ChoiceField(choices=Summary.Form.choices, initial=Summary.Form.PARAGRAPH, label="Form")


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
