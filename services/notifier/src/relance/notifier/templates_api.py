"""HTTP routes of the notifier for an organization's own email wording: read the wording
in use, preview a draft with sample data, save it (checked first), go back to the default."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from relance.common.deps import RuntimeDep, SessionDep
from relance.common.events.types import StepKind
from relance.common.tenants import AuthorizationHeader, Tenant, tenant_by_key
from relance.notifier import repository as repo
from relance.notifier.rendering import (
    SAMPLE,
    SAMPLE_TODAY,
    BadTemplate,
    Override,
    builtin_source,
    render_mail,
    subject_number_problem,
)

router = APIRouter(prefix="/v1/templates", tags=["templates"])
Language = Literal["fr", "en"]


async def tenant(s: SessionDep, authorization: AuthorizationHeader = None) -> Tenant:
    return await tenant_by_key(s, authorization)


TenantDep = Annotated[Tenant, Depends(tenant)]


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


def checked(kind: StepKind, language: str, draft: TemplateIn) -> Preview:
    """The draft rendered with sample data; 422 naming the part and line if it cannot, or
    if its subject does not show the invoice number."""
    try:
        mail = render_mail(
            kind, language, SAMPLE, SAMPLE_TODAY, Override(draft.subject, draft.body)
        )
    except BadTemplate as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["body", exc.part], "line": exc.line, "msg": str(exc)}],
        ) from exc
    problem = subject_number_problem(draft.subject)
    if problem is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["body", "subject"], "msg": problem, "type": "value_error"}],
        )
    return Preview(subject=mail.subject, text=mail.text, html=mail.html)


@router.get("/{language}/{kind}")
async def get_template(
    language: Language, kind: StepKind, org: TenantDep, s: SessionDep
) -> TemplateOut:
    """The wording in use: the organization's own, else the built-in one."""
    row = await repo.override_of(s, org.id, kind.value, language)
    if row is not None:
        return TemplateOut(
            kind=kind, language=language, subject=row.subject, body=row.body,
            overridden=True, updated_at=row.updated_at,
        )  # fmt: skip
    builtin = builtin_source(kind, language)
    return TemplateOut(
        kind=kind, language=language, subject=builtin.subject.strip(), body=builtin.body.strip(),
        overridden=False,
    )  # fmt: skip


@router.post("/{language}/{kind}/preview")
async def preview_template(
    language: Language, kind: StepKind, draft: TemplateIn, org: TenantDep
) -> Preview:
    """The draft rendered with sample data, without saving it."""
    return checked(kind, language, draft)


@router.put("/{language}/{kind}")
async def save_template(
    language: Language,
    kind: StepKind,
    draft: TemplateIn,
    org: TenantDep,
    s: SessionDep,
    rt: RuntimeDep,
) -> TemplateOut:
    """Use this wording from now on; refused (422, with the line) if it does not render."""
    checked(kind, language, draft)
    now = rt.clock.now()
    await repo.save_override(
        s,
        {
            "organization_id": org.id,
            "kind": kind.value,
            "language": language,
            "subject": draft.subject,
            "body": draft.body,
            "updated_at": now,
        },
    )
    return TemplateOut(
        kind=kind, language=language, subject=draft.subject, body=draft.body,
        overridden=True, updated_at=now,
    )  # fmt: skip


@router.delete("/{language}/{kind}", status_code=status.HTTP_204_NO_CONTENT)
async def reset_template(
    language: Language, kind: StepKind, org: TenantDep, s: SessionDep
) -> Response:
    """Back to the built-in wording."""
    await repo.delete_override(s, org.id, kind.value, language)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
