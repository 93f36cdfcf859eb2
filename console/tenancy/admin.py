from django.contrib import admin

from .models import AuditEvent, Invitation, Membership, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "log_content", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "invited_by", "created_at", "expires_at", "status"]
    list_filter = ["role"]
    search_fields = ["email", "organization__name"]
    list_select_related = ["organization", "invited_by"]
    readonly_fields = [f.name for f in Invitation._meta.fields]

    # Invitations are made in the console (the token exists only in the email) and
    # changed through console.tenancy.actions; the admin only shows them.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: audit rows are written by the actions they describe and never changed."""

    list_display = ["created_at", "action", "organization", "target", "actor"]
    list_filter = ["action", "organization"]
    search_fields = ["target", "actor__email", "organization__name", "organization__slug"]
    list_select_related = ["organization", "actor"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # the log grows without bound
    fields = ["created_at", "organization", "actor", "action", "target", "details"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
