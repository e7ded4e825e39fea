"""`imagegen gateway` (serve the batch API) and `imagegen openapi` (write its document)."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import pydantic
import yaml

from imagegen import redisconn
from imagegen.api import redisconfig
from imagegen.gateway import app, openapi, server, settings

_REDIS_URL_VARIABLE = "IMAGEGEN_GATEWAY_REDIS_URL"
_REDIS_PASSWORD_VARIABLE = "IMAGEGEN_GATEWAY_REDIS_PASSWORD"  # noqa: S105 - a variable name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=pathlib.Path, help="gateway settings file (YAML; see gateway/settings.py)"
    )
    parser.add_argument(
        "--kubeconfig",
        type=pathlib.Path,
        help="kubeconfig of the management cluster (default: in-cluster service account)",
    )
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument(
        "--images-dir", type=pathlib.Path, help="the workers' image volume, to serve images from"
    )
    parser.add_argument(
        "--webhook-allow",
        action="append",
        dest="webhook_allowlist",
        metavar="HOST",
        help="a private host or address webhooks may reach (repeatable)",
    )
    parser.epilog = (
        f"The management Redis (settings `redis`) is never set by a flag: its URL may come"
        f" from ${_REDIS_URL_VARIABLE} instead, whole with its password as a Secret holds"
        f" it; the password from the settings' redis.passwordFile or"
        f" ${_REDIS_PASSWORD_VARIABLE}."
    )


def run(args: argparse.Namespace) -> int:
    url, url_password = redisconfig.split_credentials(os.environ.get(_REDIS_URL_VARIABLE) or "")
    try:
        config = settings.load(
            args.config,
            kubeconfig=args.kubeconfig,
            host=args.host,
            port=args.port,
            images_dir=args.images_dir,
            webhook_allowlist=args.webhook_allowlist,
            redis_url=url or None,
            redis_password=os.environ.get(_REDIS_PASSWORD_VARIABLE) or url_password,
        )
    except OSError as error:
        print(f"{args.config}: {error.strerror}", file=sys.stderr)
        return 2
    except (yaml.YAMLError, ValueError) as error:
        print(_describe(args.config, error), file=sys.stderr)
        return 2
    try:
        # Read here too, so that a missing file is an exit 2 naming the field, not a
        # failed start of the server.
        redisconn.local_credentials(config.redis, password=config.redis_password)
    except ValueError as error:
        print(f"{args.config or 'settings'}: redis.{error}", file=sys.stderr)
        return 2
    server.serve(config)
    return 0


def add_openapi_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        default=pathlib.Path("docs/openapi.json"),
        help="where to write the document (default: %(default)s)",
    )


def run_openapi(args: argparse.Namespace) -> int:
    openapi.write(app.create_app(settings.GatewaySettings()), args.output)
    print(args.output)
    return 0


def _describe(path: pathlib.Path | None, error: Exception) -> str:
    where = str(path) if path else "settings"
    if isinstance(error, pydantic.ValidationError):
        return "\n".join(
            f"{where}: {'.'.join(str(part) for part in line['loc'])}: {line['msg']}"
            for line in error.errors()
        )
    return f"{where}: {error}"
