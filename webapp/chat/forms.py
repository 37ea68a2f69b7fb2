from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.html import format_html

from webapp.accounts.models import User
from webapp.chat.models import Conversation, Feedback
from webapp.documents.models import Collection, Document


class MessageForm(forms.Form):
    content = forms.CharField(
        strip=False,
        max_length=settings.PARLEY_CHAT_MAX_MESSAGE_CHARS,
        widget=forms.Textarea(attrs={"rows": 1, "placeholder": "Message Parley…"}),
        error_messages={
            "required": "Write a message first.",
            "max_length": "That message is %(show_value)s characters long; the limit is %(limit_value)s.",
        },
    )

    def clean_content(self) -> str:
        content: str = self.cleaned_data["content"]
        if not content.strip():
            raise forms.ValidationError("Write a message first.")
        return content


SYSTEM_PROMPT_MAX_LENGTH = 8000


class SettingsForm(forms.ModelForm):
    model = forms.ChoiceField(required=False, label="Model")
    system_prompt = forms.CharField(
        required=False,
        max_length=SYSTEM_PROMPT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="System prompt",
    )
    temperature = forms.FloatField(
        min_value=0.0,
        max_value=2.0,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text="0 always picks the likeliest word.",
    )
    top_p = forms.FloatField(
        min_value=0.05, max_value=1.0, widget=forms.NumberInput(attrs={"step": "0.05"}), label="Top-p"
    )
    max_tokens = forms.IntegerField(
        min_value=16, max_value=settings.PARLEY_CHAT_MAX_ANSWER_TOKENS, label="Maximum answer length (tokens)"
    )

    class Meta:
        model = Conversation
        fields = ["model", "system_prompt", "temperature", "top_p", "max_tokens"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        registry = settings.PARLEY_INFERENCE.models
        field = self.fields["model"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _model_choices()
        chosen = self.instance.model
        if chosen and registry.get(chosen) is None:
            field.help_text = format_html(
                "“{}”, this conversation's model, is no longer offered here; choose another to go on.", chosen
            )


def _model_choices() -> list[tuple[str, str]]:
    registry = settings.PARLEY_INFERENCE.models
    # "" follows the installation's default, should the operator change it
    return [("", f"Default ({registry.default})"), *((name, name) for name in registry.names)]


class ProjectForm(forms.Form):
    """A project's name and what new chats in it start with; ``owner``'s documents are the
    ones offered, and ``held_model`` (the project's model now) is named if it is gone."""

    # the name is checked by services.project_name, which says what is wrong with it
    name = forms.CharField(required=False, strip=False, label="Name")
    system_prompt = forms.CharField(
        required=False,
        max_length=SYSTEM_PROMPT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="System prompt for new chats in it",
        help_text="New conversations made in the project start with it; those already made keep their own.",
    )
    model = forms.ChoiceField(required=False, label="Model for new chats in it")
    documents = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        label="Documents new chats in it ask about",
        error_messages={"invalid_choice": "Choose among your own documents."},
    )
    collections = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        label="Collections new chats in it ask about",
        error_messages={"invalid_choice": "Choose among your own collections."},
    )

    def __init__(self, *args: Any, owner: User, held_model: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model = self.fields["model"]
        assert isinstance(model, forms.ChoiceField)
        model.choices = _model_choices()
        if held_model and settings.PARLEY_INFERENCE.models.get(held_model) is None:
            model.help_text = format_html(
                "“{}”, the project's model, is no longer offered here: new chats in it use the default.", held_model
            )
        documents = self.fields["documents"]
        assert isinstance(documents, forms.TypedMultipleChoiceField)
        documents.choices = list(
            Document.objects.filter(owner=owner)
            .exclude(status=Document.Status.FAILED)
            .order_by("name", "pk")
            .values_list("pk", "name")
        )
        if not documents.choices:
            documents.help_text = "You have no documents yet; upload some on the Documents page."
        collections = self.fields["collections"]
        assert isinstance(collections, forms.TypedMultipleChoiceField)
        collections.choices = list(Collection.objects.filter(owner=owner).values_list("pk", "name"))
        if not collections.choices:
            collections.help_text = "You have no collections; make them on the Documents page."


class ProjectDeleteForm(forms.Form):
    KEEP, MOVE = "keep", "move"
    conversations = forms.ChoiceField(
        choices=[(KEEP, "Keep its conversations outside any project"), (MOVE, "Move its conversations into")],
        widget=forms.RadioSelect,
        error_messages={
            "required": "Say what becomes of its conversations.",
            "invalid_choice": "Say what becomes of its conversations.",
        },
    )
    into = forms.IntegerField(required=False)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("conversations") == self.MOVE and cleaned.get("into") is None:
            raise forms.ValidationError("Choose the project to move its conversations into.")
        return cleaned


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200, error_messages={"required": "A title cannot be empty."})


class FeedbackForm(forms.Form):
    rating = forms.TypedChoiceField(choices=Feedback.Rating.choices, coerce=int)
    comment = forms.CharField(required=False, max_length=2000)


class ImportForm(forms.Form):
    file = forms.FileField(
        label="File",
        help_text="A conversation exported from Parley as JSON (or a list of them), or conversations.json from a "
        "ChatGPT data export.",
        error_messages={"required": "Choose a file to import.", "empty": "That file is empty."},
    )
