import uuid


class RequestIdMiddleware:
    """Give every request an id that travels with its logs, usage record and charge.

    The id is always ours: a caller-chosen id could collide with another request's charge.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = str(uuid.uuid4())
        response = self.get_response(request)
        response["x-request-id"] = request.request_id
        return response
