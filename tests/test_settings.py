"""Settings come from the environment, strictly."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "q8Jx2mVf9Lr4Tz7Wc1Nb6Hd3Kp5Sg0Ya-Ue8Io2Rt4Ew6Qz9Xc1Vb3Nm5Lk7Jh",
    "ALLOWED_HOSTS": "gateway.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/mixgateway",
    "SECURE_SSL_REDIRECT": "true",
}


def manage(*args, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_behind_a_tls_ending_proxy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, "SECURE_SSL_REDIRECT": "false"})
    assert result.returncode == 0, result.stderr


def test_a_boolean_that_is_neither_true_nor_false_stops_the_process():
    result = manage("check", **{**PRODUCTION, "DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_a_secret_key_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(PRODUCTION["SECRET_KEY"] + "\n")
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY_FILE=str(secret), **env)
    assert result.returncode == 0, result.stderr


def test_a_short_admin_api_token_is_refused():
    result = manage("check", **PRODUCTION, ADMIN_API_TOKEN="too-short")
    assert result.returncode != 0 and "ADMIN_API_TOKEN must be at least 32 characters" in result.stderr
    assert manage("check", **PRODUCTION, ADMIN_API_TOKEN="x" * 32).returncode == 0


def test_a_cluster_url_means_redis_cluster_with_its_own_celery_broker():
    probe = ("from django.conf import settings as s; print(s.REDIS_CLUSTER, s.BILLING_REDIS_SHARDS, "
             "s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'])")
    result = manage("shell", "-c", probe, **PRODUCTION, REDIS_URL="redis+cluster://10.0.0.1:6379,10.0.0.2:6379",
                    CELERY_BROKER_URL="redis://10.0.0.9:6379/0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["True", "16", "redis://10.0.0.9:6379/0", "console.redis_cluster_cache.RedisClusterCache"]


def test_a_cluster_without_a_broker_of_its_own_stops_the_process():
    result = manage("check", **PRODUCTION, REDIS_URL="redis://10.0.0.1:6379", REDIS_CLUSTER="true")
    assert result.returncode != 0
    assert "CELERY_BROKER_URL must name a single Redis" in result.stderr
