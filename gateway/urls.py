from django.urls import path, re_path

from . import views

urlpatterns = [
    path("chat/completions", views.ChatCompletionsView.as_view()),
    path("embeddings", views.EmbeddingsView.as_view()),
    path("models", views.ModelListView.as_view()),
    path("models/<path:model_id>", views.ModelDetailView.as_view()),
    re_path(r"^.*$", views.unknown_endpoint),
]
