from django.urls import path, re_path

from . import openapi, responses_views, views

urlpatterns = [
    path("chat/completions", views.ChatCompletionsView.as_view()),
    path("embeddings", views.EmbeddingsView.as_view()),
    path("messages", views.MessagesView.as_view()),
    path("messages/count_tokens", views.CountTokensView.as_view()),
    path("responses", responses_views.ResponsesView.as_view()),
    path("responses/<str:response_id>", responses_views.ResponseDetailView.as_view()),
    path("responses/<str:response_id>/input_items", responses_views.ResponseInputItemsView.as_view()),
    path("models", views.ModelListView.as_view()),
    path("models/<path:model_id>", views.ModelDetailView.as_view()),
    path("openapi.json", openapi.SchemaView.as_view(), name="openapi-schema"),
    re_path(r"^.*$", views.unknown_endpoint),
]
