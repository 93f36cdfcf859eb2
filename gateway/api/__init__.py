"""The /v1 entry: the first middleware, the views and their URLs, bearer authentication,
the OpenAPI description, the error envelope every failure becomes, and the web worker."""
