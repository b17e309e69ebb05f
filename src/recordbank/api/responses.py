"""The success envelope, serialized with orjson (handlers return bytes, not models)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def success(data: Any, metadata: dict[str, Any] | None = None, *, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    payload: dict[str, Any] = {"status": "success", "data": data}
    if metadata is not None:
        payload["metadata"] = metadata
    return Response(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    media_type="application/json", headers=headers)
