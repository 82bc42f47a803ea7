"""GET /api/asyncapi.json: the AsyncAPI document of /ws/papers (docs/asyncapi.yaml, as JSON)."""

from functools import cache

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import asyncapi

document = cache(asyncapi.build)


class AsyncApiDocumentView(APIView):
    """The protocol document; readable by signed-in users, like the OpenAPI document at /api/schema/."""

    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [JSONRenderer]

    @extend_schema(summary="The AsyncAPI 3 document of the WebSocket /ws/papers", tags=["schema"],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(document())
