"""CORS from one source: ``CORS_ALLOWED_ORIGINS`` becomes every CORS configuration the service needs.

The same list of origins feeds the API (:mod:`hera_sessions.http.api`), the local object endpoints
(:mod:`hera_sessions.runtimes.local.server`, through :func:`storage_headers`), the S3 bucket's CORS rules
(:func:`s3_rules`, for ``put_bucket_cors``), the GCS bucket's ``cors.json`` (:func:`gcs_cors`) and the Azure
Blob service's CORS rule (:func:`azure_rule`). Deploy scripts print them with::

    python -m hera_sessions.http.cors s3 [--origins https://app.example.com,https://admin.example.com]
    python -m hera_sessions.http.cors gcs > cors.json
    python -m hera_sessions.http.cors azure

Without ``--origins`` the origins come from the environment (``CORS_ALLOWED_ORIGINS``), read by
:mod:`hera_sessions.config` like every other setting.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hera_sessions.core.errors import ConfigError

#: What browsers send to storage: presigned PUT (and its parts), form POST, signed GET.
STORAGE_METHODS = ("PUT", "POST", "GET")
#: Azure Blob storage has no form POST; blocks and block lists are PUTs.
AZURE_METHODS = ("GET", "HEAD", "PUT")
#: Multipart uploads read each part's ETag: storage must let the browser see it.
EXPOSE_HEADERS = ("ETag",)
#: How long a browser may cache a preflight answer (seconds).
MAX_AGE_SECONDS = 3000
#: GCS's ``responseHeader`` list is both the request headers a browser may send (``Content-Type``,
#: ``Content-MD5``, ``x-goog-resumable``, ``x-goog-content-length-range``, ``x-goog-if-generation-match``: the
#: signed ones) and the response headers it may read
#: (``ETag``; ``Location``, the resumable upload session's address; ``Range`` when resuming).
GCS_RESPONSE_HEADERS = (
    "Content-MD5",
    "Content-Type",
    "Content-Range",
    "ETag",
    "Location",
    "Range",
    "x-goog-content-length-range",
    "x-goog-if-generation-match",
    "x-goog-resumable",
)
GCS_METHODS = ("GET", "HEAD", "PUT", "POST")
S3_RULE_ID = "browser-uploads"

TARGETS = ("s3", "gcs", "azure")


def _origins(origins: Iterable[str]) -> list[str]:
    listed = list(dict.fromkeys(o.rstrip("/") for o in origins if o.strip()))
    if not listed:
        raise ConfigError(
            "CORS_ALLOWED_ORIGINS is empty: list the origins of the web apps that upload "
            "(https://app.example.com,https://admin.example.com)"
        )
    return listed


def s3_rules(origins: Iterable[str]) -> dict[str, Any]:
    """The bucket's CORS configuration, as ``put_bucket_cors(Bucket=..., CORSConfiguration=...)`` takes it
    (and ``aws s3api put-bucket-cors --cors-configuration``)."""
    return {
        "CORSRules": [
            {
                "ID": S3_RULE_ID,
                "AllowedOrigins": _origins(origins),
                "AllowedMethods": list(STORAGE_METHODS),
                "AllowedHeaders": ["*"],
                "ExposeHeaders": list(EXPOSE_HEADERS),
                "MaxAgeSeconds": MAX_AGE_SECONDS,
            }
        ]
    }


def gcs_cors(origins: Iterable[str]) -> list[dict[str, Any]]:
    """The bucket's ``cors.json`` (``gcloud storage buckets update gs://BUCKET --cors-file=cors.json``;
    also what ``google.cloud.storage.Bucket.cors`` takes)."""
    return [
        {
            "origin": _origins(origins),
            "method": list(GCS_METHODS),
            "responseHeader": list(GCS_RESPONSE_HEADERS),
            "maxAgeSeconds": MAX_AGE_SECONDS,
        }
    ]


def azure_rule(origins: Iterable[str]) -> dict[str, Any]:
    """Keyword arguments of ``azure.storage.blob.CorsRule`` for the Blob service
    (``BlobServiceClient.set_service_properties(cors=[CorsRule(**azure_rule(origins))])``)."""
    return {
        "allowed_origins": _origins(origins),
        "allowed_methods": list(AZURE_METHODS),
        "allowed_headers": ["*"],
        "exposed_headers": list(EXPOSE_HEADERS),
        "max_age_in_seconds": MAX_AGE_SECONDS,
    }


def origin_allowed(origin: str | None, origins: Sequence[str]) -> bool:
    return bool(origin) and (origin in origins or "*" in origins)


def storage_headers(origin: str | None, origins: Sequence[str]) -> dict[str, str]:
    """The CORS headers S3 adds to an answer for ``origin`` under :func:`s3_rules` ({} when not allowed):
    what the local object endpoints send, so a browser sees the same thing from both."""
    if not origin or not origin_allowed(origin, origins):
        return {}
    headers = {
        "Access-Control-Allow-Origin": origin if origin in origins else "*",
        "Access-Control-Allow-Methods": ", ".join(STORAGE_METHODS),
        "Access-Control-Expose-Headers": ", ".join(EXPOSE_HEADERS),
        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }
    if origin in origins:  # S3 allows credentials for a named origin, never for "*"
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def render(target: str, origins: Iterable[str]) -> Any:
    """The configuration for ``target`` (``s3``, ``gcs`` or ``azure``)."""
    builders = {"s3": s3_rules, "gcs": gcs_cors, "azure": azure_rule}
    if target not in builders:
        raise ConfigError(f"Unknown CORS target {target!r}: use one of {', '.join(TARGETS)}")
    return builders[target](origins)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hera_sessions.http.cors",
        description="Print a bucket's CORS configuration (JSON) for the allowed origins.",
    )
    parser.add_argument("target", choices=TARGETS, help="s3: put-bucket-cors; gcs: cors.json; azure: CorsRule")
    parser.add_argument(
        "--origins",
        help="comma-separated origins (default: CORS_ALLOWED_ORIGINS from the environment)",
    )
    args = parser.parse_args(argv)

    from hera_sessions import config

    try:
        if args.origins is not None:  # only the origins are read, with the same rules as the setting
            settings = config.load({"CORS_ALLOWED_ORIGINS": args.origins}, environ={})
        else:
            settings = config.load(environ=environ)
        print(json.dumps(render(args.target, settings.cors_allowed_origins), indent=2))
    except ConfigError as exc:
        print(f"hera-sessions: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
