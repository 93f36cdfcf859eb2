"""Members of the current organization, and the invitations that bring new ones in."""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from console.pages.common import SESSION_KEY, org_view
from console.tenancy import actions as tenancy
from console.tenancy.access import get_for_org, has_role
from console.tenancy.models import Invitation, Membership

Role = Membership.Role


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, org, actor_role, **kwargs):
        super().__init__(*args, **kwargs)
        self.org = org
        self.fields["role"].choices = [(v, label) for v, label in Role.choices if tenancy.may_grant(actor_role, v)]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if Membership.objects.filter(organization=self.org, user__email__iexact=email).exists():
            raise forms.ValidationError(f"{email} is already a member of {self.org.name}.")
        return email


def invite_form(request, data=None) -> InviteForm:
    return InviteForm(data, org=request.org, actor_role=request.membership.role)


@org_view()
def index(request):
    return members_page(request)


def members_page(request, form=None):
    is_admin = has_role(request.membership, Role.ADMIN)
    members = Membership.objects.filter(organization=request.org).select_related("user").order_by("created_at")
    invitations = []
    if is_admin:
        invitations = (
            Invitation.objects.filter(organization=request.org, accepted_at=None, declined_at=None, revoked_at=None)
            .select_related("invited_by")
            .order_by("-created_at")
        )
    rows = [
        {
            "membership": m,
            "roles": [(v, label) for v, label in Role.choices if tenancy.may_grant(request.membership.role, v)]
            if tenancy.may_grant(request.membership.role, m.role) else [],
            "removable": m.user_id != request.user.pk and tenancy.may_grant(request.membership.role, m.role),
        }
        for m in members
    ]
    return render(request, "console/members/index.html", {
        "title": "Members",
        "rows": rows,
        "invitations": invitations,
        "form": form or (invite_form(request) if is_admin else None),
        "now": timezone.now(),
    }, status=400 if form is not None else 200)


@require_POST
@org_view(Role.ADMIN)
def invite(request):
    form = invite_form(request, request.POST)
    if not form.is_valid():
        return members_page(request, form=form)
    try:
        invitation = tenancy.invite_member(
            request.org, form.cleaned_data["email"], form.cleaned_data["role"], actor=request.user,
            accept_url_for=lambda token: request.build_absolute_uri(reverse("invitation", args=[token])),
        )
    except tenancy.NotAllowed as refusal:
        form.add_error(None, str(refusal))
        return members_page(request, form=form)
    messages.success(request, f"Invited {invitation.email} as {invitation.get_role_display().lower()}.")
    return redirect("members")


@require_POST
@org_view(Role.ADMIN)
def revoke(request, pk):
    invitation = get_for_org(Invitation.objects, request.org, pk=pk)
    try:
        tenancy.revoke_invitation(invitation, actor=request.user)
    except tenancy.NotAllowed as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"Revoked the invitation for {invitation.email}.")
    return redirect("members")


@require_POST
@org_view(Role.ADMIN)
def change_role(request, pk):
    membership = get_for_org(Membership.objects.select_related("user", "organization"), request.org, pk=pk)
    role = request.POST.get("role")
    if role not in Role.values:
        messages.error(request, "Choose a role.")
        return redirect("members")
    try:
        tenancy.change_role(membership, role, actor=request.user)
    except tenancy.NotAllowed as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"{membership.user.email} is now {Role(role).label.lower()}.")
    return redirect("members")


@require_POST
@org_view()
def remove(request, pk):
    membership = get_for_org(Membership.objects.select_related("user", "organization"), request.org, pk=pk)
    leaving = membership.user_id == request.user.pk
    if not leaving and not has_role(request.membership, Role.ADMIN):
        raise PermissionDenied("Only admins and owners may remove members.")
    try:
        tenancy.remove_member(membership, actor=request.user)
    except tenancy.NotAllowed as refusal:
        messages.error(request, str(refusal))
        return redirect("members")
    if leaving:
        # Work continues in another organization of the user, if any (see current_membership).
        request.session.pop(SESSION_KEY, None)
        messages.success(request, f"You left {membership.organization.name}.")
        return redirect("dashboard")
    messages.success(request, f"Removed {membership.user.email} from {membership.organization.name}.")
    return redirect("members")


def invitation(request, token):
    """The page an invitation email links to. Anyone may see whether a link is usable;
    answering it needs a login."""
    found = tenancy.find_invitation(token)
    if found is None or not found.is_open or found.is_expired:
        status = 404 if found is None else 410
        return render(request, "console/members/invitation_unusable.html", {
            "title": "Invitation not valid", "invitation": found, "status": found.status if found else "unknown",
        }, status=status)
    if not request.user.is_authenticated:
        # New people sign up first; both pages bring them back here afterwards.
        has_account = get_user_model().objects.filter(email__iexact=found.email).exists()
        target = "account_login" if has_account else "account_signup"
        return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
    error, status = None, 200
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "accept":
                membership = tenancy.accept_invitation(found, actor=request.user)
                request.session[SESSION_KEY] = membership.organization_id
                messages.success(request, f"Welcome to {membership.organization.name}.")
                return redirect("dashboard")
            if action == "decline":
                tenancy.decline_invitation(found, actor=request.user)
                messages.info(request, f"You declined the invitation to {found.organization.name}.")
                return redirect("home")
            error, status = "Choose Accept or Decline.", 400
        except tenancy.NotAllowed as refusal:
            error, status = str(refusal), 403
    elif (request.user.email or "").lower() != found.email:
        error = (f"This invitation was sent to {found.email}, but you are logged in as {request.user.email}. "
                 "Log in with the invited address to accept it.")
    return render(request, "console/members/invitation.html", {
        "title": f"Join {found.organization.name}", "invitation": found, "error": error,
    }, status=status)


urlpatterns = [
    path("members/", index, name="members"),
    path("members/invite/", invite, name="member_invite"),
    path("members/invitations/<int:pk>/revoke/", revoke, name="invitation_revoke"),
    path("members/<int:pk>/role/", change_role, name="member_role"),
    path("members/<int:pk>/remove/", remove, name="member_remove"),
    path("invitations/<str:token>/", invitation, name="invitation"),
]
