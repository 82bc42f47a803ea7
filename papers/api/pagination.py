"""The API's pagination: DRF's limit/offset, its response schema written for OpenAPI 3.1."""

from rest_framework.pagination import LimitOffsetPagination


class LimitOffset(LimitOffsetPagination):
    """DRF's LimitOffsetPagination; its schema marks null links with OpenAPI 3.0's "nullable", which 3.1 (JSON
    Schema) ignores, so the document would refuse the last page's null "next"."""

    def get_paginated_response_schema(self, schema: dict) -> dict:
        paginated = super().get_paginated_response_schema(schema)
        for link in ("next", "previous"):
            field = paginated["properties"][link]
            field.pop("nullable", None)
            field["type"] = [field["type"], "null"]
        return paginated
