"""Valid configs for every integration type (seed 000's examples, made real where the seed shows
a placeholder the vendor's format rejects) and one bad config per type with the field at fault."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@cache
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account_json() -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "my-gcp-project",
            "private_key_id": "abc123",
            "private_key": rsa_pem(),
            "client_email": "loader@my-gcp-project.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def valid_configs() -> dict[str, dict[str, Any]]:
    return {
        "ga4": {"measurement_id": "G-XXXXXXXXXX", "api_secret": "your_mp_api_secret"},
        "meta_capi": {"pixel_id": "1234567890", "access_token": "EAAxxxxxxxxx..."},
        "google_ads": {
            "customer_id": "123-456-7890",
            "conversion_action_id": "987654321",
            "oauth_credentials": {
                "client_id": "client-id.apps.googleusercontent.com",
                "client_secret": "GOCSPX-secret",
                "refresh_token": "1//refresh-token",
            },
        },
        "tiktok": {"pixel_id": "CXXXXXXXXXX", "access_token": "your_tiktok_access_token"},
        "pinterest": {"ad_account_id": "1234567890", "access_token": "your_pinterest_token"},
        "snapchat": {"pixel_id": "your-snap-pixel-id", "access_token": "your_snapchat_token"},
        "linkedin": {"account_id": "123456789", "access_token": "your_linkedin_token"},
        "the_trade_desk": {
            "advertiser_id": "your_ttd_advertiser_id",
            "tracking_tag_id": "your_tracking_tag_id",
            "auth_token": "your_ttd_auth_token",
        },
        "webhook": {
            "url": "https://api.example.com/events",
            "method": "POST",
            "headers": {"X-API-Key": "your_api_key"},
            "batch": False,
            "batch_size": 100,
            "batch_interval_ms": 5000,
        },
        "bigquery": {
            "project_id": "my-gcp-project",
            "dataset_id": "analytics",
            "table_id": "events",
            "service_account_json": service_account_json(),
        },
        "snowflake": {
            "account": "xy12345.us-east-1",
            "database": "ANALYTICS",
            "schema": "PUBLIC",
            "table": "EVENTS",
            "user": "DATAFLY_LOADER",
            "private_key": rsa_pem(),
        },
        "s3": {
            "bucket": "my-analytics-bucket",
            "prefix": "events/",
            "region": "us-east-1",
            "access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        },
        "gcs": {
            "bucket": "my_analytics-bucket",
            "prefix": "events/",
            "access_key_id": "GOOGTS7C7FUP3AIRVJTE2BCDKINBTES3HC2GY5CBFJDCQ2SYHV6A6XXVTJFSA",
            "secret_access_key": "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ",
        },
        "redshift": {
            "host": "my-cluster.xxxx.us-east-1.redshift.amazonaws.com",
            "port": 5439,
            "database": "analytics",
            "schema": "public",
            "table": "events",
            "user": "datafly_loader",
            "password": "Sup3r-secret",
            "s3_staging_bucket": "my-redshift-staging",
        },
    }


# Secret field paths (dotted, inside config) per type, as masked in responses.
SECRET_PATHS: dict[str, list[str]] = {
    "ga4": ["api_secret"],
    "meta_capi": ["access_token"],
    "google_ads": ["oauth_credentials.client_secret", "oauth_credentials.refresh_token"],
    "tiktok": ["access_token"],
    "pinterest": ["access_token"],
    "snapchat": ["access_token"],
    "linkedin": ["access_token"],
    "the_trade_desk": ["auth_token"],
    "webhook": ["headers.X-API-Key"],
    "bigquery": ["service_account_json"],
    "snowflake": ["private_key"],
    "s3": ["secret_access_key"],
    "gcs": ["secret_access_key"],
    "redshift": ["password"],
}


def bad_configs() -> list[tuple[str, dict[str, Any], str]]:
    """(type, config, field expected in details) - one format or range error per type, plus
    missing-required cases."""
    good = valid_configs()

    def with_(type_: str, **changes: Any) -> dict[str, Any]:
        return {**good[type_], **changes}

    return [
        ("ga4", with_("ga4", measurement_id="UA-12345-1"), "config.measurement_id"),
        ("ga4", {"measurement_id": "G-ABCDEF12"}, "config.api_secret"),
        ("meta_capi", with_("meta_capi", pixel_id="pixel!"), "config.pixel_id"),
        ("meta_capi", with_("meta_capi", access_token=""), "config.access_token"),
        (
            "google_ads",
            with_("google_ads", customer_id="12-34"),
            "config.customer_id",
        ),
        (
            "google_ads",
            with_("google_ads", oauth_credentials={"client_id": "x", "client_secret": "y"}),
            "config.oauth_credentials.refresh_token",
        ),
        ("tiktok", with_("tiktok", pixel_id="c lower"), "config.pixel_id"),
        ("pinterest", with_("pinterest", ad_account_id="abc"), "config.ad_account_id"),
        ("snapchat", with_("snapchat", pixel_id="has space"), "config.pixel_id"),
        ("linkedin", with_("linkedin", account_id="urn:li:x"), "config.account_id"),
        ("the_trade_desk", with_("the_trade_desk", tracking_tag_id=""), "config.tracking_tag_id"),
        ("webhook", with_("webhook", url="ftp://example.com/x"), "config.url"),
        ("webhook", with_("webhook", url="/relative/path"), "config.url"),
        ("webhook", with_("webhook", method="GET"), "config.method"),
        ("webhook", with_("webhook", batch_size=0), "config.batch_size"),
        ("webhook", with_("webhook", batch_size=100_000), "config.batch_size"),
        ("webhook", with_("webhook", batch_interval_ms=-1), "config.batch_interval_ms"),
        ("webhook", with_("webhook", headers={"Bad Header": "x"}), "config.headers"),
        ("webhook", with_("webhook", signing_secret="not-base64!"), "config.signing_secret"),
        (
            "bigquery",
            with_("bigquery", service_account_json="{ ... }"),
            "config.service_account_json",
        ),
        ("bigquery", with_("bigquery", project_id="X"), "config.project_id"),
        ("snowflake", with_("snowflake", private_key="..."), "config.private_key"),
        ("snowflake", with_("snowflake", database="1bad"), "config.database"),
        ("s3", with_("s3", bucket="Bad_Bucket"), "config.bucket"),
        ("s3", with_("s3", region="mars"), "config.region"),
        ("gcs", with_("gcs", bucket="goog-bucket"), "config.bucket"),
        ("gcs", with_("gcs", access_key_id="AKIAIOSFODNN7EXAMPLE"), "config.access_key_id"),
        ("redshift", with_("redshift", port=70000), "config.port"),
        ("redshift", with_("redshift", host="bad host!"), "config.host"),
        (
            "redshift",
            {k: v for k, v in good["redshift"].items() if k != "password"},
            "config.password",
        ),
    ]
