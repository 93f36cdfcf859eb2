from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from console.pages.common import SESSION_KEY
from console.tenancy.access import memberships_of
from console.tenancy.actions import create_organization
from django.contrib.auth.decorators import login_required


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=200, label="Organization name")


@login_required
def new(request):
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        org = create_organization(form.cleaned_data["name"], request.user.email)
        request.session[SESSION_KEY] = org.pk
        messages.success(request, f"Created {org.name}. You are its owner.")
        return redirect("dashboard")
    return render(request, "console/organizations/new.html", {"form": form})


@require_POST
@login_required
def switch(request):
    wanted = request.POST.get("organization")
    membership = next((m for m in memberships_of(request.user) if str(m.organization_id) == wanted), None)
    if membership is None:
        messages.error(request, "You are not a member of that organization.")
    else:
        request.session[SESSION_KEY] = membership.organization_id
    return redirect(_same_site(request, request.POST.get("next")) or "dashboard")


def _same_site(request, url: str | None) -> str | None:
    """`url` if it stays on this site (a path here, or this host), so that a crafted form
    cannot send a signed-in user on to another site (an open redirect)."""
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return url
    return None


urlpatterns = [
    path("orgs/new/", new, name="organization_new"),
    path("orgs/switch/", switch, name="organization_switch"),
]
