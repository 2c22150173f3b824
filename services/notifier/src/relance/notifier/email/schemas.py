"""HTTP bodies of an organization's email wording, in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from relance.common.events.types import StepKind

Language = Literal["fr", "en"]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=500)
    body: str = Field(min_length=1, max_length=20_000)


class TemplateOut(BaseModel):
    kind: StepKind
    language: Language
    subject: str
    body: str
    overridden: bool
    updated_at: datetime | None = None


class Preview(BaseModel):
    subject: str
    text: str
    html: str
