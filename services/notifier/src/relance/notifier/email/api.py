"""HTTP routes of an organization's own email wording: read the wording in use, preview a
draft with sample data, save it (checked first), go back to the built-in one."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from relance.common.deps import RuntimeDep, SessionDep
from relance.common.events.types import StepKind
from relance.common.tenants import TenantDep
from relance.notifier.email import service
from relance.notifier.email.schemas import Language, Preview, TemplateIn, TemplateOut

router = APIRouter(prefix="/v1/templates", tags=["templates"])


def template_out(kind: StepKind, language: Language, wording: service.Wording) -> TemplateOut:
    return TemplateOut(
        kind=kind, language=language, subject=wording.subject, body=wording.body,
        overridden=wording.overridden, updated_at=wording.updated_at,
    )  # fmt: skip


@router.get("/{language}/{kind}")
async def get_template(
    language: Language, kind: StepKind, org: TenantDep, s: SessionDep
) -> TemplateOut:
    """The wording in use: the organization's own, else the built-in one."""
    return template_out(kind, language, await service.wording_in_use(s, org.id, kind, language))


@router.post("/{language}/{kind}/preview")
async def preview_template(
    language: Language, kind: StepKind, draft: TemplateIn, org: TenantDep
) -> Preview:
    """The draft rendered with sample data, without saving it."""
    mail = service.checked_draft(kind, language, draft.subject, draft.body)
    return Preview(subject=mail.subject, text=mail.text, html=mail.html)


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
    wording = await service.save_wording(
        s, org.id, kind, language, draft.subject, draft.body, rt.clock.now()
    )
    return template_out(kind, language, wording)


@router.delete("/{language}/{kind}", status_code=status.HTTP_204_NO_CONTENT)
async def reset_template(
    language: Language, kind: StepKind, org: TenantDep, s: SessionDep
) -> Response:
    """Back to the built-in wording."""
    await service.reset_wording(s, org.id, kind, language)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
