"""AWS Secrets Manager through Powertools parameters (cached by Powertools as well)."""

from __future__ import annotations


def resolve(arn: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(arn, max_age=3600)
    return value if isinstance(value, str) else bytes(value).decode()
