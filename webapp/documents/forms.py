from __future__ import annotations

from django import forms

from webapp.documents.models import Summary


class SummaryForm(forms.Form):
    length = forms.ChoiceField(choices=Summary.Length.choices, initial=Summary.Length.MEDIUM)
    form = forms.ChoiceField(choices=Summary.Form.choices, initial=Summary.Form.PARAGRAPH, label="Form")
