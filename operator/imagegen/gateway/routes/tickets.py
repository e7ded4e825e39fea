"""Stream tickets: what a browser opens a batch's WebSocket or SSE stream with."""

from __future__ import annotations

import fastapi

from imagegen.gateway import problems, schemas, services, streamauth, translate
from imagegen.gateway.routes import batches

router = fastapi.APIRouter(tags=["batches"])


@router.post(
    translate.API_PREFIX + "/{batch_id}/events/tickets",
    response_model=schemas.StreamTicket,
    status_code=201,
    responses=problems.responses_doc(401, 404, 429),
    summary="A single-use ticket that opens this batch's event stream once",
)
async def issue_ticket(
    batch_id: str, found: services.ServicesDep, tenant: services.Admitted
) -> schemas.StreamTicket:
    """For clients that cannot send Authorization with a WebSocket or an EventSource
    (browsers): open `events?ticket=...` within `expires_in` seconds. The ticket works
    once, for this batch only."""
    await batches.find(found, tenant, batch_id)
    ttl = found.settings.stream_ticket_seconds
    ticket = await found.tickets.issue(tenant=tenant.name, batch=batch_id)
    return schemas.StreamTicket(
        ticket=ticket, expires_in=ttl, parameter=streamauth.TICKET_PARAMETER
    )
