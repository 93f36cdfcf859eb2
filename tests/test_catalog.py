"""`python manage.py load_catalog FILE`: exact prices, idempotent upserts, disabling
instead of deleting, and errors that say where in the file the problem is."""

import io
import textwrap
from decimal import Decimal

import pytest
import requests
from django.core.management import CommandError, call_command

from gateway.upstream.adapters import ADAPTERS
from gateway.routing.catalog import forget_routes, resolve_route
from gateway.keys.api_keys import KeyIdentity, mint_api_key
from gateway.models import CatalogModel, Provider

pytestmark = pytest.mark.django_db

CATALOG = """
providers:
  deepseek:
    protocol: openai
    base_url: https://api.deepseek.com/v1
    api_key_env: DEEPSEEK_API_KEY
    timeout_seconds: 60
    models:
      deepseek-chat:
        input_per_mtok: "0.27"
        output_per_mtok: "1.10"
        cached_input_per_mtok: "0.07"
        max_output_tokens: 8192
        context_window: 65536
      deepseek-reasoner: {input_per_mtok: "0.55", output_per_mtok: "2.19", upstream_model: deepseek-r1}
  demo:
    protocol: mock
    models:
      echo: {input_per_mtok: "0.10", output_per_mtok: "0.20"}
      tiny: {input_per_mtok: "0.000001", output_per_mtok: 0}
"""

ANYONE = KeyIdentity(key_id=0, organization_id=0, prefix="sk-test", allowed_models=(), expires_at=None,
                     revoked=False)


@pytest.fixture
def write(tmp_path):
    def write_file(text: str, name: str = "catalog.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write_file


def load(path: str) -> str:
    out = io.StringIO()
    call_command("load_catalog", path, stdout=out)
    return out.getvalue()


def model(public_id: str) -> CatalogModel:
    provider, _, name = public_id.partition(":")
    return CatalogModel.objects.select_related("provider").get(provider__slug=provider, name=name)


def test_it_creates_providers_and_models_with_exact_prices(write):
    out = load(write(CATALOG))
    assert out.splitlines()[-1] == "6 created, 0 updated, 0 disabled, 0 unchanged"
    assert "created  deepseek:deepseek-chat" in out

    deepseek = Provider.objects.get(slug="deepseek")
    assert deepseek.protocol == "openai" and deepseek.base_url == "https://api.deepseek.com/v1"
    assert deepseek.api_key_env == "DEEPSEEK_API_KEY" and deepseek.timeout_seconds == 60
    chat = model("deepseek:deepseek-chat")
    assert chat.input_per_mtok == Decimal("0.27") and chat.output_per_mtok == Decimal("1.10")
    assert isinstance(chat.input_per_mtok, Decimal)
    assert chat.cached_input_per_mtok == Decimal("0.07")
    assert chat.max_output_tokens == 8192 and chat.context_window == 65536
    assert chat.upstream_model == "" and chat.enabled
    reasoner = model("deepseek:deepseek-reasoner")
    assert reasoner.upstream_model == "deepseek-r1" and reasoner.cached_input_per_mtok is None
    tiny = model("demo:tiny")
    assert tiny.input_per_mtok == Decimal("0.000001") and tiny.output_per_mtok == 0

    route = resolve_route("deepseek:deepseek-chat", ANYONE)
    assert route.input_per_mtok == Decimal("0.27") and route.upstream_model == "deepseek-chat"
    assert resolve_route("deepseek:deepseek-reasoner", ANYONE).upstream_model == "deepseek-r1"


def test_loading_the_same_file_twice_changes_nothing(write):
    path = write(CATALOG)
    load(path)
    before = {(m.public_id, m.updated_at) for m in CatalogModel.objects.select_related("provider")}
    providers_before = {(p.slug, p.updated_at) for p in Provider.objects.all()}
    out = load(path)
    assert out == "0 created, 0 updated, 0 disabled, 6 unchanged\n"
    assert {(m.public_id, m.updated_at) for m in CatalogModel.objects.select_related("provider")} == before
    assert {(p.slug, p.updated_at) for p in Provider.objects.all()} == providers_before


def test_a_model_removed_from_the_file_is_disabled_not_deleted(write):
    load(write(CATALOG))
    pk = model("deepseek:deepseek-reasoner").pk
    out = load(write(CATALOG.replace(
        '      deepseek-reasoner: {input_per_mtok: "0.55", output_per_mtok: "2.19", upstream_model: deepseek-r1}\n', ""
    )))
    assert "disabled deepseek:deepseek-reasoner" in out
    assert out.splitlines()[-1] == "0 created, 0 updated, 1 disabled, 5 unchanged"
    gone = CatalogModel.objects.get(pk=pk)
    assert not gone.enabled and gone.input_per_mtok == Decimal("0.55")
    forget_routes()
    with pytest.raises(Exception, match="disabled"):
        resolve_route("deepseek:deepseek-reasoner", ANYONE)

    # ... and listing it again brings the same row back.
    out = load(write(CATALOG))
    assert "updated  deepseek:deepseek-reasoner (enabled)" in out
    assert CatalogModel.objects.get(pk=pk).enabled


def test_a_provider_removed_from_the_file_is_disabled_with_its_models(write):
    load(write(CATALOG))
    out = load(write(CATALOG.split("  demo:")[0]))
    assert "disabled demo" in out and "disabled demo:echo" in out
    assert not Provider.objects.get(slug="demo").enabled
    assert CatalogModel.objects.filter(provider__slug="demo").count() == 2
    assert not CatalogModel.objects.filter(provider__slug="demo", enabled=True).exists()


def test_a_price_change_updates_the_model(write):
    load(write(CATALOG))
    echo = model("demo:echo")
    out = load(write(CATALOG.replace('echo: {input_per_mtok: "0.10"', 'echo: {input_per_mtok: "0.15"')))
    assert "updated  demo:echo (input_per_mtok)" in out
    assert out.splitlines()[-1] == "0 created, 1 updated, 0 disabled, 5 unchanged"
    changed = model("demo:echo")
    assert changed.pk == echo.pk
    assert changed.input_per_mtok == Decimal("0.15") and changed.output_per_mtok == Decimal("0.20")
    assert changed.updated_at > echo.updated_at
    forget_routes()
    assert resolve_route("demo:echo", ANYONE).input_per_mtok == Decimal("0.15")


def test_an_unquoted_price_keeps_its_decimal_form(write):
    load(write("""
        providers:
          demo:
            protocol: mock
            models:
              echo: {input_per_mtok: 0.1, output_per_mtok: 3}
    """))
    assert model("demo:echo").input_per_mtok == Decimal("0.1")
    assert model("demo:echo").output_per_mtok == Decimal("3")


# -- errors ---------------------------------------------------------------------------------


def load_error(path: str) -> str:
    with pytest.raises(CommandError) as err:
        load(path)
    return str(err.value)


def test_it_reports_a_missing_file(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    message = load_error(missing)
    assert missing in message and "No such file" in message


def test_it_reports_invalid_yaml_with_its_line(write):
    path = write("providers:\n  demo:\n    protocol: mock\n    models: {echo: [\n")
    message = load_error(path)
    assert message.startswith(f"{path}: not valid YAML")
    assert "line" in message


@pytest.mark.parametrize("text", ["", "just a string\n", "- a\n- list\n", "provider:\n  demo: {}\n",
                                  "providers:\n  - demo\n"])
def test_it_requires_a_providers_mapping(write, text):
    assert "top-level 'providers:' mapping" in load_error(write(text))


CASES = [
    ("""
     providers:
       odd: {protocol: grpc, models: {}}
     """, "providers.odd.protocol: must be one of openai, anthropic"),
    ("""
     providers:
       odd: {models: {}}
     """, "providers.odd.protocol: must be one of"),
    ("""
     providers:
       deepseek:
         protocol: openai
         models: {chat: {input_per_mtok: "1", output_per_mtok: "1"}}
     """, "providers.deepseek.base_url: an http(s) URL is required for protocol openai"),
    ("""
     providers:
       deepseek: {protocol: openai, base_url: "ftp://x", models: {}}
     """, "providers.deepseek.base_url: an http(s) URL is required"),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           echo: {input_per_mtok: "cheap", output_per_mtok: "1"}
     """, "providers.demo.models.echo.input_per_mtok: 'cheap' is not a decimal number"),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           echo: {input_per_mtok: "1", output_per_mtok: "-0.5"}
     """, "providers.demo.models.echo.output_per_mtok: must be zero or more, not '-0.5'"),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           echo: {input_per_mtok: "1", output_per_mtok: -2}
     """, "providers.demo.models.echo.output_per_mtok: must be zero or more"),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           echo: {input_per_mtok: "1", output_per_mtok: "NaN"}
     """, "providers.demo.models.echo.output_per_mtok: must be zero or more"),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           echo: {input_per_mtok: "0.12345678901", output_per_mtok: "1"}
     """, "providers.demo.models.echo.input_per_mtok: at most "),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           echo: {output_per_mtok: "1"}
     """, "providers.demo.models.echo.input_per_mtok: required"),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           echo: {input_per_mtok: "1", output_per_mtok: "1", input_price: "2"}
     """, "providers.demo.models.echo: unknown field(s) input_price"),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           echo: "0.27"
     """, "providers.demo.models.echo: must be a mapping"),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           - echo
     """, "providers.demo.models: must be a mapping"),
    ("""
     providers:
       demo:
         protocol: mock
         models:
           echo: {input_per_mtok: "1", output_per_mtok: "1", max_output_tokens: 0}
     """, "providers.demo.models.echo.max_output_tokens: must be a positive whole number"),
    ("""
     providers:
       demo: {protocol: mock, timeout_seconds: -1, models: {}}
     """, "providers.demo.timeout_seconds: must be a positive number"),
    ("""
     providers:
       demo: {protocol: mock, api_key: sk-123, models: {}}
     """, "providers.demo: unknown field(s) api_key"),
    ("""
     providers:
       "de:mo": {protocol: mock, models: {}}
     """, "providers.de:mo: provider names may use"),
    ("""
     providers:
       demo: mock
     """, "providers.demo: must be a mapping"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[1].split(":")[0] + ":" + c[1].split(": ")[1][:20]
                                                            for c in CASES])
def test_it_reports_the_precise_location_of_a_mistake(write, text, expected):
    load(write(CATALOG))
    before = sorted(CatalogModel.objects.values_list("pk", "enabled", "input_per_mtok", "output_per_mtok"))
    path = write(text, "broken.yaml")
    message = load_error(path)
    assert message.startswith(f"{path}: {expected}")
    # A broken file changes nothing: everything is validated before anything is written.
    after = sorted(CatalogModel.objects.values_list("pk", "enabled", "input_per_mtok", "output_per_mtok"))
    assert after == before


@pytest.mark.parametrize("price", ["1e30", "12345678901"])
def test_it_reports_a_huge_price_with_its_location(write, price):
    path = write(f"""
        providers:
          demo:
            protocol: mock
            models:
              echo: {{input_per_mtok: "{price}", output_per_mtok: "1"}}
    """)
    assert load_error(path).startswith(f"{path}: providers.demo.models.echo.input_per_mtok: ")
    assert not CatalogModel.objects.exists()


def test_every_protocol_the_loader_accepts_has_an_adapter():
    assert set(Provider.Protocol.values) <= set(ADAPTERS)


# -- model ids with a colon ------------------------------------------------------------------

COLON_CATALOG = """
providers:
  ollama:
    protocol: openai
    base_url: http://127.0.0.1:11434/v1
    models:
      "llama3:8b": {input_per_mtok: "0", output_per_mtok: "0"}
      llama3:70b-instruct: {input_per_mtok: "0", output_per_mtok: "0"}
  local:
    protocol: mock
    models:
      "echo:v2": {input_per_mtok: "0.10", output_per_mtok: "0.20"}
"""


def test_a_model_name_may_contain_a_colon(write):
    load(write(COLON_CATALOG))
    route = resolve_route("ollama:llama3:8b", ANYONE)
    assert route.provider == "ollama" and route.upstream_model == "llama3:8b"
    assert route.public_id == "ollama:llama3:8b"
    assert resolve_route("ollama:llama3:70b-instruct", ANYONE).upstream_model == "llama3:70b-instruct"
    with pytest.raises(Exception, match="does not exist"):
        resolve_route("ollama:llama3", ANYONE)
    limited = KeyIdentity(key_id=0, organization_id=0, prefix="sk-test", allowed_models=("ollama:llama3:8b",),
                          expires_at=None, revoked=False)
    assert resolve_route("ollama:llama3:8b", limited).model_id == route.model_id
    with pytest.raises(Exception, match="not allowed"):
        resolve_route("ollama:llama3:70b-instruct", limited)


@pytest.mark.django_db(transaction=True)
def test_a_model_name_with_a_colon_answers_through_the_gateway(write, gateway_url, org):
    load(write(COLON_CATALOG))
    _, secret = mint_api_key(org)
    resp = requests.post(f"{gateway_url}/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                         json={"model": "local:echo:v2", "messages": [{"role": "user", "content": "hi there"}]},
                         timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == "local:echo:v2"
    assert resp.json()["choices"][0]["message"]["content"] == "hi there"
    listed = requests.get(f"{gateway_url}/models", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert "local:echo:v2" in {m["id"] for m in listed.json()["data"]}
    detail = requests.get(f"{gateway_url}/models/local:echo:v2", headers={"Authorization": f"Bearer {secret}"},
                          timeout=10)
    assert detail.status_code == 200 and detail.json()["id"] == "local:echo:v2"
