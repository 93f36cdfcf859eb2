"""The audit log of the current organization: who changed what, newest first. Owners only."""

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import path

from console.pages.common import org_view
from console.tenancy.audit import ACTIONS
from console.tenancy.models import AuditEvent, Membership

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "All actions"), *ACTIONS.items()], required=False)


@org_view(Membership.Role.OWNER)
def index(request):
    form = AuditFilterForm(request.GET)
    events = AuditEvent.objects.filter(organization=request.org).select_related("actor")
    action = form.cleaned_data["action"] if form.is_valid() else ""
    if action:
        events = events.filter(action=action)
    page = Paginator(events.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    for event in page:
        event.label = ACTIONS.get(event.action, event.action)
    return render(request, "console/audit/index.html", {
        "title": "Audit log", "form": form, "page": page, "filtering": bool(action),
    })


urlpatterns = [
    path("audit/", index, name="audit"),
]
