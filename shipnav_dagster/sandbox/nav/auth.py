"""NavUserPassword and Entra credentials: HTTP Basic, bearer tokens, and the token endpoint.

NavUserPassword servers take HTTP Basic with the user name and the password or web-service
access key; Business Central with Microsoft Entra takes OAuth 2.0 client-credentials bearer
tokens from ``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token``. A refused
credential answers 401 ``Authentication_InvalidCredentials`` "The server has rejected the client
credentials" (https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/dynamics-error-codes).
Windows credentials (NTLM/Negotiate) are in ``windows_auth``.
"""

import base64
import binascii
import secrets
import time
import uuid
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shipnav_dagster.sandbox.nav.errors import ODataFailure
from shipnav_dagster.sandbox.state import SANDBOX_NAV_TENANT, NavState, SandboxWorld


def _basic_credentials(header: str) -> tuple[str, str] | None:
    try:
        raw = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode("utf-8")
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = raw.partition(":")
    return (user, password) if sep else None


def authorized(nav: NavState, header: str) -> bool:
    scheme = header.split(" ", 1)[0].lower()
    if scheme == "bearer":
        token = header.split(" ", 1)[1].strip() if " " in header else ""
        expiry = nav.tokens.get(token)
        return nav.app_registered and expiry is not None and expiry > time.time()
    if scheme == "basic":
        creds = _basic_credentials(header)
        return creds is not None and secrets.compare_digest(
            f"{creds[0]}\0{creds[1]}".encode(), f"{nav.username}\0{nav.password}".encode()
        )
    return False


def unauthorized(base_url: str) -> ODataFailure:
    challenge = f'Bearer authorization_uri="{base_url}/{SANDBOX_NAV_TENANT}/oauth2/authorize", Basic realm=""'
    return ODataFailure(
        401,
        "Authentication_InvalidCredentials",
        "The server has rejected the client credentials",
        {"WWW-Authenticate": challenge},
    )


def _aad_error(status: int, error: str, code: int, description: str) -> JSONResponse:
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} "
        f"Correlation ID: {uuid.uuid4()} Timestamp: {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}",
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }
    return JSONResponse(body, status_code=status)


def _token_client(form: Mapping[str, str], header: str) -> tuple[str, str]:
    """client_secret_post or client_secret_basic, as Entra accepts both."""
    if header.lower().startswith("basic "):
        creds = _basic_credentials(header)
        if creds is not None:
            return unquote(creds[0]), unquote(creds[1])
    return form.get("client_id", ""), form.get("client_secret", "")


async def token_endpoint(request: Request) -> Response:
    """POST {base}/{tenant}/oauth2/v2.0/token: OAuth 2.0 client credentials, Entra style."""
    world: SandboxWorld = request.app.state.world
    nav = world.nav
    if request.path_params["tenant"] != SANDBOX_NAV_TENANT:
        tenant = request.path_params["tenant"]
        return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    client_id, client_secret = _token_client(form, request.headers.get("authorization", ""))
    for name in ("grant_type", "scope"):
        if not form.get(name):
            return _aad_error(
                400,
                "invalid_request",
                900144,
                f"The request body must contain the following parameter: '{name}'.",
            )
    if form["grant_type"] != "client_credentials":
        return _aad_error(
            400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
        )
    if not form["scope"].endswith("/.default"):
        return _aad_error(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {form['scope']} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier.",
        )
    with world.lock:
        if client_id != nav.client_id:
            return _aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if not secrets.compare_digest(client_secret.encode(), nav.client_secret.encode()):
            return _aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        token = secrets.token_urlsafe(48)
        nav.tokens[token] = time.time() + nav.token_ttl_seconds
        ttl = nav.token_ttl_seconds
    return JSONResponse(
        {"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
