from django.conf import settings
from django.db import models
from django.utils import timezone

from billing.money import MoneyField
from console.tenancy.models import Organization

PRICE = {"max_digits": 20, "decimal_places": 10}  # USD per 1,000,000 tokens


class Provider(models.Model):
    class Protocol(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        ANTHROPIC = "anthropic", "Anthropic Messages"
        GEMINI = "gemini", "Google Gemini (Generative Language API)"
        MOCK = "mock", "Built-in offline mock"

    slug = models.SlugField(max_length=64, unique=True, help_text='the part before ":" in "provider:modelId"')
    protocol = models.CharField(max_length=16, choices=Protocol.choices)
    base_url = models.URLField(max_length=500, blank=True)
    # The name of the environment variable holding the upstream key; never the key itself.
    api_key_env = models.CharField(max_length=100, blank=True)
    # Or the key itself, pasted in the admin: only its ciphertext (gateway.upstream.upstream_keys).
    api_key_encrypted = models.TextField(blank=True, editable=False)
    timeout_seconds = models.FloatField(null=True, blank=True, help_text="longest wait for the next byte")
    # OpenAI-protocol servers that want the key elsewhere (Azure OpenAI: "api-key"); empty
    # means "Authorization: Bearer <key>".
    auth_header = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict, blank=True, help_text="static headers sent with every upstream call")
    query_params = models.JSONField(default=dict, blank=True, help_text='added to every upstream URL, e.g. '
                                                                       '{"api-version": "2024-10-21"}')
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.slug


class CatalogModel(models.Model):
    """A model callers can name as "provider:name", with the prices it is billed at."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    name = models.CharField(max_length=200, help_text='the part after ":" in "provider:modelId"')
    upstream_model = models.CharField(max_length=200, blank=True, help_text="sent upstream; defaults to name")
    input_per_mtok = models.DecimalField(**PRICE)
    output_per_mtok = models.DecimalField(**PRICE)
    cached_input_per_mtok = models.DecimalField(**PRICE, null=True, blank=True)
    # Prompt tokens written to the provider's cache (Anthropic's cache creation); empty: the input price.
    cache_write_per_mtok = models.DecimalField(**PRICE, null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    # More than one place serving this model: [{"base_url", "api_key_env", "weight"}, ...];
    # empty means the provider's own base_url and key.
    deployments = models.JSONField(default=list, blank=True)
    # Public ids of other catalog models to try, in order, when every deployment fails.
    fallbacks = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "gateway_model"
        verbose_name = "model"
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="model_name_unique_per_provider")]
        ordering = ["provider__slug", "name"]

    def __str__(self):
        return self.public_id

    @property
    def public_id(self) -> str:
        return f"{self.provider.slug}:{self.name}"


class ModelAlias(models.Model):
    """A short name callers may use instead of "provider:modelId"."""

    name = models.CharField(max_length=200, unique=True)
    target = models.CharField(max_length=300, help_text='the "provider:modelId" it stands for')
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.name} → {self.target}"


class ApiKey(models.Model):
    """A caller's bearer key. Only a SHA-256 hash and a short display prefix are stored."""

    class Kind(models.TextChoices):
        STANDARD = "standard", "API key"
        PLAYGROUND = "playground", "Console playground"  # used by the console, never shown as a secret
        # "mk-…": calls the management API (/api/v1) of its organization, never /v1.
        MANAGEMENT = "management", "Management key"

    class BudgetPeriod(models.TextChoices):
        # Stored and shown here; the live store applies spend_limit per period (issue 14).
        NONE = "none", "In all"
        DAILY = "daily", "Per UTC day"
        WEEKLY = "weekly", "Per UTC week"
        MONTHLY = "monthly", "Per UTC month"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, help_text="the first characters, to recognise the key")
    secret_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Public model ids ("provider:modelId") this key may call; empty means every model.
    allowed_models = models.JSONField(default=list, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.STANDARD)
    spend_limit = MoneyField(null=True, blank=True, help_text="USD this key may spend in all; empty: no limit")
    budget_period = models.CharField(max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.NONE,
                                     help_text="the calendar period spend_limit applies to")
    rpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="requests per minute; empty: none")
    tpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="tokens per minute; empty: none")

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    def allows(self, public_model_id: str) -> bool:
        return not self.allowed_models or public_model_id in self.allowed_models


class StoredResponse(models.Model):
    """A /v1/responses answer kept for its organization (`store`, default true), so that
    `previous_response_id` can continue its conversation and GET /v1/responses/{id} can
    return it. Deleted with the usage records it outlives (USAGE_RETENTION_DAYS)."""

    response_id = models.CharField(max_length=64, unique=True, help_text='"resp_…", as the caller knows it')
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="stored_responses")
    api_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    model = models.CharField(max_length=300, help_text="the model as the caller named it")
    status = models.CharField(max_length=16)
    # The whole conversation before this answer: the previous response's input and output
    # (when it continued one), then this request's input, as Responses input items.
    input_items = models.JSONField(default=list)
    output_items = models.JSONField(default=list)
    usage = models.JSONField(default=dict)
    # The rest of the response object as it was answered (instructions, tools, metadata…).
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="stored_response_org_newest")]

    def __str__(self):
        return self.response_id

    def as_response(self) -> dict:
        """The response object, as POST answered it and GET returns it."""
        return {**self.response, "output": self.output_items, "usage": self.usage}
