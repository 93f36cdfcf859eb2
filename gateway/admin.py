"""The admin for operators: providers (with write-only upstream keys), the catalog, keys.

The catalog is normally loaded from YAML (`load_catalog`); edits made here are overwritten
by the next load of a file that lists the same model."""

from django import forms
from django.contrib import admin, messages

from .routing.catalog import forget_routes
from .keys.api_keys import revoke_api_key
from .models import ApiKey, CatalogModel, ModelAlias, Provider
from .upstream.upstream_keys import encrypt, masked


class ProviderForm(forms.ModelForm):
    base_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    api_key = forms.CharField(
        required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text="Paste the upstream key to store it encrypted; leave empty to keep the current one. "
                  "A key in the environment variable named above takes precedence.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = Provider
        fields = ["slug", "protocol", "base_url", "api_key_env", "timeout_seconds", "enabled"]


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ["slug", "protocol", "base_url", "api_key_env", "stored_key", "enabled"]
    list_filter = ["protocol", "enabled"]
    search_fields = ["slug", "base_url"]
    readonly_fields = ["stored_key"]

    @admin.display(description="stored key")
    def stored_key(self, obj):
        return masked(obj.api_key_encrypted) or "—"

    def save_model(self, request, obj, form, change):
        if form.cleaned_data.get("clear_api_key"):
            obj.api_key_encrypted = ""
        elif form.cleaned_data.get("api_key"):
            obj.api_key_encrypted = encrypt(form.cleaned_data["api_key"])
        super().save_model(request, obj, form, change)
        forget_routes()


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = ["__str__", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "max_output_tokens",
                    "enabled"]
    list_filter = ["enabled", "provider"]
    search_fields = ["name", "upstream_model", "provider__slug"]
    list_select_related = ["provider"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_routes()


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["name", "target", "enabled"]
    search_fields = ["name", "target"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "organization", "kind", "created_by", "created_at", "last_used_at",
                    "expires_at", "revoked_at"]
    list_filter = ["kind", "revoked_at"]
    search_fields = ["prefix", "name", "organization__name", "organization__slug"]
    list_select_related = ["organization", "created_by"]
    readonly_fields = ["organization", "prefix", "secret_hash", "kind", "created_by", "created_at", "last_used_at",
                       "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # keys are created by their organization's people, who see the secret once

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            revoke_api_key(key, actor=request.user)
        messages.success(request, "Revoked. The gateway refuses these keys from now on.")
