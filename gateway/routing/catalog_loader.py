"""Loading the catalog YAML: validate everything first, then upsert in one transaction."""

import datetime
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import yaml
from django.db import transaction

from billing.money import PRICE_DECIMAL_PLACES

from .catalog import forget_routes
from ..models import CatalogModel, ModelAlias, Provider

PROVIDER_KEYS = {"protocol", "base_url", "api_key_env", "timeout_seconds", "models",
                 "auth_header", "headers", "query_params"}
OPENAI_ONLY_KEYS = ("auth_header", "headers", "query_params")
MODEL_KEYS = {
    "input_per_mtok", "output_per_mtok", "upstream_model", "cached_input_per_mtok", "cache_write_per_mtok",
    "max_output_tokens", "context_window", "deployments", "fallbacks",
}
DEPLOYMENT_KEYS = {"base_url", "api_key_env", "weight"}
MAX_PRICE = Decimal(1_000_000)  # USD per million tokens; far above any real price
PROTOCOLS_NEEDING_URL = {Provider.Protocol.OPENAI, Provider.Protocol.ANTHROPIC, Provider.Protocol.GEMINI}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token
# Headers the upstream exchange sets itself; a catalog may not replace them.
EXCHANGE_HEADERS = {"host", "content-type", "content-length", "transfer-encoding", "connection", "accept",
                    "accept-encoding", "authorization"}


class CatalogError(ValueError):
    pass


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    unchanged: int = 0


def _price(value, where: str, required: bool = True) -> Decimal | None:
    if value is None:
        if required:
            raise CatalogError(f"{where}: required (USD per 1,000,000 tokens, as a decimal string)")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise CatalogError(f"{where}: must be a decimal string such as \"0.27\"")
    try:
        # str() first: a float written unquoted in YAML keeps its shortest decimal form.
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise CatalogError(f"{where}: {value!r} is not a decimal number")
    if not price.is_finite() or price < 0:
        raise CatalogError(f"{where}: must be zero or more, not {value!r}")
    if price >= MAX_PRICE:
        raise CatalogError(f"{where}: {value!r} is more than the largest price, {MAX_PRICE - 1} USD per million")
    # Six places keep every cost a whole number of picodollars (billing.money): exact.
    if price != price.quantize(Decimal(1).scaleb(-PRICE_DECIMAL_PLACES)):
        raise CatalogError(f"{where}: at most {PRICE_DECIMAL_PLACES} decimal places, not {value!r}")
    return price


def _positive_int(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"{where}: must be a positive whole number")
    return value


def _deployments(value, where: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        raise CatalogError(f"{where}: must be a non-empty list of {{base_url, api_key_env, weight}}")
    out = []
    for i, spec in enumerate(value):
        dwhere = f"{where}[{i}]"
        if not isinstance(spec, dict):
            raise CatalogError(f"{dwhere}: must be a mapping")
        unknown = set(spec) - DEPLOYMENT_KEYS
        if unknown:
            raise CatalogError(f"{dwhere}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        base_url = str(spec.get("base_url") or "")
        if base_url and not base_url.startswith(("http://", "https://")):
            raise CatalogError(f"{dwhere}.base_url: must be an http(s) URL")
        weight = spec.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
            raise CatalogError(f"{dwhere}.weight: must be a positive number")
        out.append({"base_url": base_url, "api_key_env": str(spec.get("api_key_env") or ""), "weight": weight})
    return out


def _header_name(value, where: str) -> str:
    if not isinstance(value, str) or not _HEADER_NAME.match(value):
        raise CatalogError(f"{where}: {value!r} is not an HTTP header name")
    return value


def _string_map(value, where: str, key_check) -> dict[str, str]:
    """A mapping of names to values written as strings (a YAML date or number is read as the
    text it was written as: api-version: 2024-10-21 stays "2024-10-21")."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: must be a mapping of names to values")
    out = {}
    for name, item in value.items():
        name = key_check(name, f"{where}.{name}")
        if isinstance(item, bool) or not isinstance(item, (str, int, datetime.date)):
            raise CatalogError(f"{where}.{name}: must be a string")
        item = item.isoformat() if isinstance(item, datetime.date) else str(item)
        if "\r" in item or "\n" in item:
            raise CatalogError(f"{where}.{name}: must be one line")
        out[name] = item
    return out


def _query_name(value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise CatalogError(f"{where}: a query parameter needs a name")
    return value


def _openai_options(spec: dict, where: str) -> dict:
    """auth_header, headers and query_params: what an OpenAI-compatible server (Azure
    OpenAI and the like) needs beyond the usual bearer key."""
    auth = _header_name(spec["auth_header"], f"{where}.auth_header") if spec.get("auth_header") else ""
    auth = "" if auth.lower() == "authorization" else auth  # the default, bearer
    headers = _string_map(spec.get("headers"), f"{where}.headers", _header_name)
    taken = EXCHANGE_HEADERS | {auth.lower()} if auth else EXCHANGE_HEADERS
    for name in headers:
        if name.lower() in taken:
            raise CatalogError(f"{where}.headers.{name}: set by the gateway itself (the key goes in auth_header)")
    return {"auth_header": auth, "headers": headers,
            "query_params": _string_map(spec.get("query_params"), f"{where}.query_params", _query_name)}


def _model_ids(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and ":" in v for v in value):
        raise CatalogError(f"{where}: must be a list of \"provider:modelId\" strings")
    return list(value)


def _check_references(providers: dict, aliases: dict) -> None:
    known = {f"{slug}:{name}" for slug, spec in providers.items() for name in spec["models"]}
    for slug, spec in providers.items():
        for name, mspec in spec["models"].items():
            for target in mspec["fallbacks"]:
                if target not in known:
                    raise CatalogError(f"providers.{slug}.models.{name}.fallbacks: {target!r} is not in this file")
                if target == f"{slug}:{name}":
                    raise CatalogError(f"providers.{slug}.models.{name}.fallbacks: a model cannot fall back to itself")
    for alias, target in aliases.items():
        if target not in known:
            raise CatalogError(f"aliases.{alias}: {target!r} is not a model in this file")


def parse_aliases(data: dict) -> dict[str, str]:
    aliases = data.get("aliases") or {}
    if not isinstance(aliases, dict):
        raise CatalogError("aliases: must be a mapping of short names to \"provider:modelId\"")
    out = {}
    for name, target in aliases.items():
        name = str(name)
        if ":" in name or not name.strip():
            raise CatalogError(f"aliases.{name}: an alias is a name without ':'")
        if not isinstance(target, str) or ":" not in target:
            raise CatalogError(f"aliases.{name}: must name a \"provider:modelId\"")
        out[name] = target
    return out


def parse_catalog(text: str) -> tuple[dict[str, dict], dict[str, str]]:
    """The file as ({provider slug: {fields..., "models": {name: fields}}}, {alias: target}),
    all checked."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogError(f"not valid YAML: {e}")
    if not isinstance(data, dict) or not isinstance(data.get("providers"), dict):
        raise CatalogError("the file must have a top-level 'providers:' mapping")
    providers = {}
    for slug, spec in data["providers"].items():
        where = f"providers.{slug}"
        slug = str(slug)
        if ":" in slug or not slug.replace("-", "").replace("_", "").isalnum():
            raise CatalogError(f"{where}: provider names may use letters, digits, '-' and '_'")
        if not isinstance(spec, dict):
            raise CatalogError(f"{where}: must be a mapping")
        unknown = set(spec) - PROVIDER_KEYS
        if unknown:
            raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        protocol = spec.get("protocol")
        if protocol not in Provider.Protocol.values:
            raise CatalogError(f"{where}.protocol: must be one of {', '.join(Provider.Protocol.values)}")
        base_url = str(spec.get("base_url") or "")
        if protocol in PROTOCOLS_NEEDING_URL and not base_url.startswith(("http://", "https://")):
            raise CatalogError(f"{where}.base_url: an http(s) URL is required for protocol {protocol}")
        if protocol != Provider.Protocol.OPENAI:
            for name in OPENAI_ONLY_KEYS:
                if spec.get(name):
                    raise CatalogError(f"{where}.{name}: only for protocol openai")
        timeout = spec.get("timeout_seconds")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise CatalogError(f"{where}.timeout_seconds: must be a positive number")
        models_spec = spec.get("models") or {}
        if not isinstance(models_spec, dict):
            raise CatalogError(f"{where}.models: must be a mapping of model names")
        models = {}
        for name, mspec in models_spec.items():
            mwhere = f"{where}.models.{name}"
            if not isinstance(mspec, dict):
                raise CatalogError(f"{mwhere}: must be a mapping with input_per_mtok and output_per_mtok")
            unknown = set(mspec) - MODEL_KEYS
            if unknown:
                raise CatalogError(f"{mwhere}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
            models[str(name)] = {
                "upstream_model": str(mspec.get("upstream_model") or ""),
                "input_per_mtok": _price(mspec.get("input_per_mtok"), f"{mwhere}.input_per_mtok"),
                "output_per_mtok": _price(mspec.get("output_per_mtok"), f"{mwhere}.output_per_mtok"),
                "cached_input_per_mtok": _price(
                    mspec.get("cached_input_per_mtok"), f"{mwhere}.cached_input_per_mtok", required=False
                ),
                "cache_write_per_mtok": _price(
                    mspec.get("cache_write_per_mtok"), f"{mwhere}.cache_write_per_mtok", required=False
                ),
                "max_output_tokens": _positive_int(mspec.get("max_output_tokens"), f"{mwhere}.max_output_tokens"),
                "context_window": _positive_int(mspec.get("context_window"), f"{mwhere}.context_window"),
                "deployments": _deployments(mspec.get("deployments"), f"{mwhere}.deployments"),
                "fallbacks": _model_ids(mspec.get("fallbacks"), f"{mwhere}.fallbacks"),
                "enabled": True,
            }
        providers[slug] = {
            "protocol": protocol,
            "base_url": base_url,
            "api_key_env": str(spec.get("api_key_env") or ""),
            "timeout_seconds": float(timeout) if timeout is not None else None,
            **_openai_options(spec, where),
            "enabled": True,
            "models": models,
        }
    aliases = parse_aliases(data)
    _check_references(providers, aliases)
    return providers, aliases


def _upsert(model_class, lookup: dict, fields: dict, label: str, report: LoadReport):
    row = model_class.objects.filter(**lookup).first()
    if row is None:
        row = model_class.objects.create(**lookup, **fields)
        report.created.append(label)
        return row
    changed = [name for name, value in fields.items() if getattr(row, name) != value]
    if changed:
        for name in changed:
            setattr(row, name, fields[name])
        row.save()
        report.updated.append(f"{label} ({', '.join(changed)})")
    else:
        report.unchanged += 1
    return row


@transaction.atomic
def load_catalog(text: str) -> LoadReport:
    """Upsert the file's providers and models; whatever the file no longer lists is
    disabled, never deleted, so its history stays billable. Loading twice changes nothing."""
    providers, aliases = parse_catalog(text)
    report = LoadReport()
    seen_models = set()
    for slug, spec in providers.items():
        models = spec.pop("models")
        provider = _upsert(Provider, {"slug": slug}, spec, slug, report)
        for name, mspec in models.items():
            row = _upsert(CatalogModel, {"provider": provider, "name": name}, mspec, f"{slug}:{name}", report)
            seen_models.add(row.pk)
    for provider in Provider.objects.exclude(slug__in=providers).filter(enabled=True):
        provider.enabled = False
        provider.save(update_fields=["enabled", "updated_at"])
        report.disabled.append(provider.slug)
    for model in CatalogModel.objects.select_related("provider").exclude(pk__in=seen_models).filter(enabled=True):
        model.enabled = False
        model.save(update_fields=["enabled", "updated_at"])
        report.disabled.append(model.public_id)
    for name, target in aliases.items():
        _upsert(ModelAlias, {"name": name}, {"target": target, "enabled": True}, f"alias {name}", report)
    for alias in ModelAlias.objects.exclude(name__in=aliases).filter(enabled=True):
        alias.enabled = False
        alias.save(update_fields=["enabled", "updated_at"])
        report.disabled.append(f"alias {alias.name}")
    transaction.on_commit(forget_routes)
    return report
