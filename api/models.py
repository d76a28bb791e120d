"""The API's requests and answers as pydantic models: they validate every request and are the
source of `openapi.json` (api.openapi), so the document cannot drift from what is accepted."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

MAX_INT = 2**31 - 1  # incident numbers are 32-bit in the database



class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceRef(Strict):
    """A reference to evidence: hashes and ids, never the content itself."""

    content_id: str | None = Field(default=None, min_length=1, max_length=256, description="The platform's content id")
    md5: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{32}$")
    sha1: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{40}$")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    pdq: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$", description="PDQ, 256 bits in hex")
    photodna: str | None = Field(default=None, pattern=r"^[A-Za-z0-9+/=,]{16,1024}$",
                                 description="PhotoDNA hash as the matcher gives it (base64 or comma-separated)")
    source: str | None = Field(default=None, min_length=1, max_length=128,
                               description="Which matcher or list matched (e.g. `ncmec-hashlist`)")

    @model_validator(mode="after")
    def _something(self) -> EvidenceRef:
        if not any((self.content_id, self.md5, self.sha1, self.sha256, self.pdq, self.photodna)):
            raise ValueError("give a content_id or at least one hash")
        return self

    def hashes(self) -> dict[str, str]:
        found = {"md5": self.md5, "sha1": self.sha1, "sha256": self.sha256, "pdq": self.pdq}
        out = {kind: value.lower() for kind, value in found.items() if value}
        if self.photodna:
            out["photodna"] = self.photodna
        return out


class DeclareRequest(Strict):
    playbook: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")
    summary: str = Field(min_length=1, max_length=500, description="What happened, with case ids; no content")
    severity: Literal["sev1", "sev2", "sev3"] | None = None
    external_id: str | None = Field(default=None, min_length=1, max_length=128,
                                    description="The caller's own id for this (a case or alert id)")
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=50)


class DeclareResponse(BaseModel):
    number: int
    ref: str
    channel_id: str | None = Field(description="Null until Slack has made the channel (see GET the incident)")
    channel_name: str | None
    status: str
    url: str
    merged: bool = Field(description="True: an open incident of the playbook holds one of the hashes; "
                                     "this declaration was added to it as a sighting")
    sightings: int = 0


class ListQuery(Strict):
    status: Literal["open", "resolved", "closed"] | None = None
    playbook: str | None = Field(default=None, min_length=1, max_length=64)
    external_id: str | None = Field(default=None, min_length=1, max_length=128)
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class IncidentSummary(BaseModel):
    number: int
    ref: str
    playbook: str
    title: str
    severity: str
    status: str
    declared_at: datetime
    declared_by: str
    channel_id: str | None
    channel_name: str | None
    external_id: str | None
    url: str


class IncidentList(BaseModel):
    incidents: list[IncidentSummary]


class StepOut(BaseModel):
    id: str
    title: str
    owner: str
    state: Literal["waiting", "active", "done", "skipped"]
    done_by: str | None
    done_at: datetime | None
    skipped_reason: str | None
    values: dict[str, str] = Field(description="Every recorded value, private ones included (see private_fields)")
    private_fields: list[str] = Field(description="Fields never shown in Slack: keep them out of wide displays")
    after: list[str]


class ClockOut(BaseModel):
    kind: str
    step: str | None
    target: str | None
    due_at: datetime
    basis: str = Field(description="`law: …` for a legal clock, else an internal target")


class PageOut(BaseModel):
    id: int
    role: str
    level: int
    created_at: datetime
    reason: str


class IncidentDetail(IncidentSummary):
    resolution: str | None
    sightings: int
    roles: dict[str, list[str]]
    steps: list[StepOut]
    clocks: list[ClockOut]
    pages: list[PageOut]


class TimelineEvent(BaseModel):
    seq: int
    at: str = Field(description="ISO 8601, UTC")
    kind: str
    actor: str | None
    text: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class Timeline(RootModel[list[TimelineEvent]]):
    pass


class StepRequest(Strict):
    action: Literal["done", "skip"]
    fields: dict[str, str] = Field(default_factory=dict, max_length=30,
                                   description="Field values for `done` (e.g. {\"report_id\": \"123456\"})")
    reason: str | None = Field(default=None, min_length=1, max_length=500, description="Required for `skip`")


class StepResponse(BaseModel):
    number: int
    step: str
    state: Literal["done", "skipped"]


class NoteRequest(Strict):
    text: str = Field(min_length=1, max_length=3000, description="Refer to evidence by ids and hashes; never describe content")


class NoteResponse(BaseModel):
    number: int
    seq: int


class ExposureRequest(Strict):
    user: str = Field(pattern=r"^[UW][A-Z0-9]{2,31}$", description="The Slack user id of who viewed")
    duration: str = Field(min_length=2, max_length=16, pattern=r"^[1-9][0-9]{0,5}[smhd]$",
                          description="`90s`, `25m`, `1h` (at most 12h)")
    items: int | None = Field(default=None, ge=1, le=100_000)
    kind: Literal["image", "video", "audio", "text"] | None = None
    incident: int | None = Field(default=None, ge=1, le=MAX_INT,
                                 description="When given, the custody fact (who, when, how many) goes on its timeline")


class ExposureResponse(BaseModel):
    """No figures: they are the person's own (and the stewards')."""

    logged: bool
    user: str
    incident: int | None
    custody_event: int | None = Field(description="The seq of the `content_viewed` timeline event")


class Error(BaseModel):
    error: str = Field(description="A stable code: bad_request, unauthorized, forbidden, not_found, conflict, "
                                   "too_large, unsupported_media_type, invalid, content_refused, rate_limited")
    message: str
    field: str | None = None
