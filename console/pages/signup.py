"""Sign-up, as allauth does it, but knowing the invitation that sent the person here: the
page says who invited them to which organization and fills in the invited address."""

from urllib.parse import urlsplit

from allauth.account.views import SignupView
from django.urls import Resolver404, path, resolve

from console.tenancy import actions as tenancy


def invitation_behind(next_url: str | None):
    """The open invitation whose page `next_url` is (the invitation page sends people to
    sign up with itself as next), or None."""
    if not next_url:
        return None
    try:
        match = resolve(urlsplit(next_url).path)
    except Resolver404:
        return None
    if match.url_name != "invitation":
        return None
    found = tenancy.find_invitation(match.kwargs["token"])
    return found if found is not None and found.is_open and not found.is_expired else None


class InvitedSignupView(SignupView):
    def dispatch(self, request, *args, **kwargs):
        self.invitation = invitation_behind(request.GET.get("next") or request.POST.get("next"))
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self):
        initial = super().get_initial()
        if self.invitation is not None:
            initial["email"] = self.invitation.email
        return initial

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "invitation": self.invitation}


# Before allauth's own urls, so this view answers /accounts/signup/ (reverse("account_signup")
# still names the same path).
urlpatterns = [path("accounts/signup/", InvitedSignupView.as_view())]
