"""The baseline of bench/gateway_submit.py: a bare FastAPI endpoint that reads a JSON
body and answers 202, with nothing behind it. Served by uvicorn as the gateway is."""

from typing import Any

import fastapi
from fastapi import responses

app = fastapi.FastAPI()


@app.post("/api/v1/batch/generate", status_code=202)
async def submit(request: fastapi.Request) -> responses.JSONResponse:
    body: Any = await request.json()
    return responses.JSONResponse({"id": "bare", "items": len(body["items"])}, status_code=202)
