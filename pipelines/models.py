"""What a pipeline IS, in the database: the pipeline, its steps and edges as rows, and its revisions.

The steps and edges are rows so the editor can change one step at a time; the definition JSON is their
exact serialization (:func:`pipelines.services.definition_of`). Every save that changes the definition
freezes it into an immutable :class:`PipelineRevision`; runs execute a revision, never the live rows.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from pipelines.definition import STEP_TYPES

code_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]*$", "Use lower-case letters, digits, '-' and '_' (start with a letter or digit)."
)


class Shared(models.Model):
    """Who may use a pipeline, connection or secret (pipelines.access). With no owner and no team it is
    open to everyone whose model permissions allow; otherwise only to its owners, the members of its
    teams, and superusers."""

    owners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+",
                                    help_text="People who may use it (with their model permissions).")
    teams = models.ManyToManyField("auth.Group", blank=True, related_name="+",
                                   help_text="Groups whose members may use it.")

    class Meta:
        abstract = True


class Pipeline(Shared):
    code = models.CharField(max_length=100, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    context = models.JSONField(default=dict, blank=True, help_text="Pipeline settings: parallelExecution, "
                               "errorHandling, throughput, ...")
    # Top-level definition keys we keep verbatim (hooks, capabilities, dependsOn).
    extra = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    allow_concurrent_runs = models.BooleanField(
        default=False, help_text="Allow a new run while another run of this pipeline is active."
    )
    requires_review = models.BooleanField(
        default=False, help_text="Changes are submitted for review and published only when a reviewer approves "
                                 "them (pipelines.reviews)."
    )
    current_revision = models.ForeignKey(
        "PipelineRevision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        permissions = [
            ("run_pipeline", "Can run pipelines"),
            ("review_pipeline", "Can approve or reject changes submitted for review"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Step(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    key = models.CharField(max_length=100)
    type = models.CharField(max_length=20, choices=[(t, t.title()) for t in STEP_TYPES])
    adapter_code = models.CharField(max_length=100, null=True, blank=True)
    name = models.CharField(max_length=200, null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)
    disabled = models.BooleanField(default=False)
    retries = models.PositiveIntegerField(default=0)
    retry_delay_ms = models.PositiveIntegerField(default=0)
    timeout_ms = models.PositiveIntegerField(null=True, blank=True)
    continue_on_error = models.BooleanField(default=False)
    extra = models.JSONField(default=dict, blank=True, help_text="Other plugin step fields, kept verbatim.")

    class Meta:
        ordering = ["pipeline", "position"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "key"], name="step_key_unique_per_pipeline"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.code}/{self.key}"


class Edge(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="edges")
    position = models.PositiveIntegerField()
    from_key = models.CharField(max_length=100)
    to_key = models.CharField(max_length=100)
    branch = models.CharField(max_length=100, null=True, blank=True)
    dependency_only = models.BooleanField(default=False)

    class Meta:
        ordering = ["pipeline", "position"]

    def __str__(self) -> str:
        return f"{self.from_key} -> {self.to_key}" + (f" [{self.branch}]" if self.branch else "")


class ImmutableError(Exception):
    pass


class PipelineRevision(models.Model):
    """A frozen definition. Never changed after it is written: runs point at it."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    message = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pipeline", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "number"], name="revision_number_unique_per_pipeline"),
        ]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableError("a pipeline revision cannot be changed once written")
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.pipeline.code} r{self.number}"


class Secret(Shared):
    """A named secret. Its value is write-only: stored encrypted, or as a reference ``env:NAME``.

    Nothing but :func:`pipelines.secrets.resolve_secret` (called inside the worker) reads the value.
    """

    code = models.CharField(max_length=100, unique=True, validators=[code_validator])
    description = models.CharField(max_length=300, blank=True, default="")
    ciphertext = models.TextField(blank=True, default="")
    env_name = models.CharField(max_length=200, blank=True, default="",
                                help_text="Read the value from this environment variable instead.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def is_set(self) -> bool:
        return bool(self.ciphertext or self.env_name)


class Connection(Shared):
    TYPES = [
        ("HTTP", "HTTP / REST API"),
        ("GRAPHQL", "GraphQL API"),
        ("POSTGRES", "PostgreSQL"),
        ("MYSQL", "MySQL / MariaDB"),
        ("SQLITE", "SQLite"),
        ("REDIS", "Redis"),
        ("FOLDER", "Folder on the worker's disk"),
        ("SFTP", "SFTP server"),
        ("FTP", "FTP / FTPS server"),
        ("CUSTOM", "Custom"),
    ]
    code = models.CharField(max_length=100, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200, blank=True, default="")
    type = models.CharField(max_length=20, choices=TYPES)
    config = models.JSONField(default=dict, blank=True,
                              help_text="Non-secret settings (base URL, host, port, database, user); secrets are "
                              "named by code, e.g. passwordSecretCode.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class HubSetting(models.Model):
    """An operating setting changed on the settings page (``pipelines.hub_settings`` lists which ones).

    Only consulted when the setting's environment variable is not set: the environment always wins."""

    key = models.CharField(max_length=100, unique=True)
    value = models.JSONField()
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class PipelineDraft(models.Model):
    """One person's unpublished changes to one pipeline: what the editor shows them and saves as they type.

    ``definition`` always passes validation (every editor change is checked before it lands here);
    ``pending`` holds what was typed into a panel that could not be applied yet (text in a number field, a
    required field left empty), keyed by panel (``step:<key>``, ``settings``), as the form's (name, value)
    pairs, so a reload shows it again exactly as typed. Publishing turns the draft into a revision, but only
    from ``base_revision``: if someone published in between, the person decides (merge or overwrite).
    """

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="drafts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    definition = models.JSONField()
    pending = models.JSONField(default=dict, blank=True)
    base_revision = models.ForeignKey(PipelineRevision, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "user"], name="one_draft_per_pipeline_and_user"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.code} draft of {self.user}"


class ReviewStatus(models.TextChoices):
    PENDING = "PENDING", "Waiting for review"
    APPROVED = "APPROVED", "Approved and published"
    REJECTED = "REJECTED", "Rejected"
    SUPERSEDED = "SUPERSEDED", "Replaced by a newer submission"


class PipelineReview(models.Model):
    """One submission of a change for review: the definition as it was submitted (a frozen copy of the
    author's draft, so later typing does not change what the reviewer approves), the revision it is a change
    of, the author's message, and the decision. Each submission is its own row, so the rows of a pipeline are
    its review history: who submitted, who approved or rejected, when, with which comment.
    """

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="reviews")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    definition = models.JSONField()
    base_revision = models.ForeignKey(PipelineRevision, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    message = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    submitted_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True, default="", help_text="The reviewer's comment (required to reject).")
    revision = models.OneToOneField(PipelineRevision, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="review", help_text="The revision an approval published.")

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        indexes = [models.Index(fields=["status", "submitted_at"], name="review_status_submitted")]

    def __str__(self) -> str:
        return f"{self.pipeline.code} review {self.pk} ({self.status})"
