"""Cursor pagination: {"results": [...], "next": url or null}, stable while rows arrive."""

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from .errors import invalid


class Cursor(CursorPagination):
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-id"

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:
            raise invalid("Invalid cursor: pass back exactly the `next` URL of the previous page.", "cursor")

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "format": "uri", "nullable": True,
                         "description": "The next page, or null on the last one."},
            },
        }


class NewestFirst(Cursor):
    """Usage in the order requests arrived (created_at), newest first."""

    ordering = ("-created_at", "-id")
