"""The hand-written Django forms of the pipeline pages: create, duplicate, import, preview."""

from __future__ import annotations

import json

from django import forms

from pipelines import registry
from pipelines.forms.values import json_error
from pipelines.models import Pipeline, code_validator


def _check_code(value: str) -> str:
    code_validator(value)
    return value


def start_choices() -> list[tuple[str, str]]:
    """What a new pipeline can start with: any step that is valid with an empty config."""
    choices = [("TRIGGER", "Manual trigger")] if "TRIGGER" in registry.step_types else []
    for entry in registry.extractors:
        if not entry.schema.get("required"):
            choices.append((f"EXTRACT:{entry.code}", f"Extract · {entry.name}"))
    return choices


class PipelineCreateForm(forms.Form):
    code = forms.CharField(max_length=100, validators=[_check_code],
                           help_text="Lower-case letters, digits, '-' and '_'. Used in URLs and the CLI.")
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    start = forms.ChoiceField(label="First step", choices=(),
                              help_text="You add the other steps in the editor.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["start"].choices = start_choices()

    def clean_code(self):
        code = self.cleaned_data["code"]
        if Pipeline.objects.filter(code=code).exists():
            raise forms.ValidationError(f"a pipeline with the code '{code}' exists already")
        return code


class DuplicateForm(forms.Form):
    code = forms.CharField(max_length=100, validators=[_check_code], label="New code")
    name = forms.CharField(max_length=200, label="New name")

    def clean_code(self):
        code = self.cleaned_data["code"]
        if Pipeline.objects.filter(code=code).exists():
            raise forms.ValidationError(f"a pipeline with the code '{code}' exists already")
        return code


IMPORT_MAX_BYTES = 1024 * 1024


class ImportForm(forms.Form):
    file = forms.FileField(label="Definition file (.json)",
                           help_text=f"A pipeline definition exported from Datahub or the plugin; at most "
                           f"{IMPORT_MAX_BYTES // 1024} KiB.")
    code = forms.CharField(max_length=100, required=False, validators=[_check_code], label="Code",
                           help_text="Leave empty to use the code in the file.")
    replace = forms.BooleanField(required=False, label="Replace the pipeline with this code if it exists",
                                 help_text="Its current definition stays in the revision history.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                f"the file is {upload.size // 1024} KiB; at most {IMPORT_MAX_BYTES // 1024} KiB is accepted")
        raw = upload.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError(f"the file is not UTF-8 text (byte {exc.start + 1})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"the file is {json_error(exc)}") from None
        if not isinstance(data, dict):
            raise forms.ValidationError("the file must hold one JSON object: a pipeline definition")
        return data


PREVIEW_MAX = 1000


class PreviewForm(forms.Form):
    limit = forms.IntegerField(min_value=1, max_value=PREVIEW_MAX, initial=10, label="First N records",
                               help_text=f"The extract steps read at most this many records (1 to {PREVIEW_MAX}).")
