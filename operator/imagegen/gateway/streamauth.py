"""Who may open a batch's event stream: the holder of a single-use ticket for that batch
(browsers, which cannot set headers on a WebSocket or an EventSource), or of an API key in
`Authorization` (every other client). Either way the request is charged to the tenant."""

from __future__ import annotations

from typing import Annotated

import fastapi

from imagegen.gateway import problems, services, tenants

TICKET_PARAMETER = "ticket"


async def stream_tenant(
    connection: fastapi.requests.HTTPConnection, found: services.Services, batch_id: str
) -> tenants.TenantView:
    """The tenant whose ticket or key opened this stream of batch_id, charged one
    request; 401 when the ticket is unknown, used, expired or for another batch."""
    ticket = connection.query_params.get(TICKET_PARAMETER)
    if not ticket:
        tenant = await services.authenticate(connection, found)
    else:
        grant = await found.tickets.redeem(ticket)
        found_tenant = (
            found.tenants.get(grant.tenant) if grant and grant.batch == batch_id else None
        )
        if found_tenant is None:
            raise problems.Problem(
                status=401,
                slug="bad-stream-ticket",
                detail="stream ticket unknown, already used, expired or for another batch;"
                " ask for a new one",
            )
        tenant = found_tenant
        services.bind(connection, tenant)
    await services.charge(connection, found, tenant)
    return tenant


async def _admitted(
    request: fastapi.Request,
    found: services.ServicesDep,
    batch_id: str,
    # Declared so that the OpenAPI document shows it; read from the query by stream_tenant,
    # which the WebSocket route (no dependency injection of query models) shares.
    ticket: Annotated[
        str | None,
        fastapi.Query(
            max_length=100,
            description="a ticket from POST .../events/tickets, instead of Authorization",
        ),
    ] = None,
) -> tenants.TenantView:
    del ticket
    return await stream_tenant(request, found, batch_id)


StreamAdmitted = Annotated[tenants.TenantView, fastapi.Depends(_admitted)]
