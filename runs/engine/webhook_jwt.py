"""JWT authentication of webhook deliveries (``"authentication": "JWT"``), with PyJWT. [pure]

A delivery carries ``Authorization: Bearer <token>``. The trigger names exactly one algorithm,
``jwtAlgorithm``, and only that one is accepted: HS256 with the secret ``jwtSecretCode``, RS256 or ES256
with the PEM public key ``jwtPublicKey`` (a public key is no secret, so it sits in the definition and is
checked when the definition is saved). Accepting one fixed algorithm is what makes "alg": "none" and the
old confusion attack (an HS256 token signed with the RS256 public key as its HMAC secret) fail: the
token's own header never chooses how it is checked.

Claims: ``exp`` is required; ``nbf`` and ``iat``, when present, must not lie in the future; ``jwtIssuer``
and ``jwtAudience``, when configured, must match (and the claims must then be present). Clocks may
differ by ``jwtLeewaySec`` seconds (default 30, at most 300).

A refusal says which check failed; it never repeats the token, a claim's value or the key.
"""

from __future__ import annotations

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

ALGORITHMS = ("HS256", "RS256", "ES256")
DEFAULT_LEEWAY = 30
MAX_LEEWAY = 300
MIN_RSA_BITS = 2048

JWT_PROPERTIES = {
    "jwtAlgorithm": {"enum": list(ALGORITHMS),
                     "description": "WEBHOOK JWT: the one algorithm accepted (HS256 with jwtSecretCode; RS256 or "
                     "ES256 with jwtPublicKey)."},
    "jwtSecretCode": {"type": "string", "description": "WEBHOOK JWT HS256: the secret the tokens are signed with."},
    "jwtPublicKey": {"type": "string",
                     "description": "WEBHOOK JWT RS256/ES256: the issuer's public key, PEM "
                     "(-----BEGIN PUBLIC KEY-----)."},
    "jwtIssuer": {"type": "string", "minLength": 1,
                  "description": "WEBHOOK JWT: the iss claim required (unchecked when not set)."},
    "jwtAudience": {"anyOf": [{"type": "string", "minLength": 1},
                              {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}],
                    "description": "WEBHOOK JWT: the aud claim must name this (or one of these)."},
    "jwtLeewaySec": {"type": "integer", "minimum": 0, "maximum": MAX_LEEWAY, "default": DEFAULT_LEEWAY,
                     "description": "WEBHOOK JWT: clock difference allowed for exp, nbf and iat, in seconds."},
}


class JwtRefused(Exception):
    """The delivery's token does not pass; ``str()`` says which check failed (safe to answer with)."""


def jwt_problems(config: dict) -> list[tuple[str, str]]:
    """(field, message) for a JWT-authenticated WEBHOOK trigger's config; empty when usable."""
    algorithm = config.get("jwtAlgorithm")
    if algorithm not in ALGORITHMS:
        return [("jwtAlgorithm", f"a JWT webhook trigger needs jwtAlgorithm: {', '.join(ALGORITHMS)}")]
    if algorithm == "HS256":
        problems = []
        if not isinstance(config.get("jwtSecretCode"), str) or not config["jwtSecretCode"]:
            problems.append(("jwtSecretCode", "HS256 needs jwtSecretCode, the secret the tokens are signed with"))
        if "jwtPublicKey" in config:
            problems.append(("jwtPublicKey", "HS256 uses a shared secret (jwtSecretCode), not a public key"))
        return problems
    if "jwtSecretCode" in config:
        return [("jwtSecretCode", f"{algorithm} checks tokens with a public key (jwtPublicKey), not a secret")]
    problem = public_key_problem(algorithm, config.get("jwtPublicKey"))
    return [("jwtPublicKey", problem)] if problem else []


def public_key_problem(algorithm: str, pem) -> str | None:
    """Why ``pem`` cannot check ``algorithm`` tokens, or None."""
    if not isinstance(pem, str) or not pem.strip():
        return f"{algorithm} needs jwtPublicKey, the issuer's public key in PEM form"
    try:
        key = load_pem_public_key(pem.strip().encode())
    except (ValueError, TypeError):
        return "jwtPublicKey is not a PEM public key (-----BEGIN PUBLIC KEY----- ...)"
    if algorithm == "RS256":
        if not isinstance(key, rsa.RSAPublicKey):
            return "RS256 needs an RSA public key"
        if key.key_size < MIN_RSA_BITS:
            return f"the RSA key has {key.key_size} bits; RS256 needs at least {MIN_RSA_BITS}"
    elif not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return "ES256 needs an EC public key on the P-256 curve"
    return None


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise JwtRefused("no bearer token in the Authorization header")
    return token.strip()


def verify(token: str, config: dict, key: str) -> dict:
    """The token's claims if it passes every check ``config`` asks for; JwtRefused otherwise.

    ``key``: the secret's value (HS256) or the PEM public key. A key PyJWT cannot use raises
    ``jwt.InvalidKeyError``: the server's configuration is wrong, not the token.
    """
    algorithm = config["jwtAlgorithm"]
    issuer, audience = config.get("jwtIssuer"), config.get("jwtAudience")
    leeway = config.get("jwtLeewaySec", DEFAULT_LEEWAY)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise JwtRefused("the token is malformed") from None
    if str(header.get("alg", "")).lower() == "none":
        raise JwtRefused("unsigned tokens (alg none) are refused")
    if header.get("alg") != algorithm:
        raise JwtRefused(f"the token is not signed with {algorithm}, the only algorithm this trigger accepts")
    required = ["exp"] + (["iss"] if issuer else []) + (["aud"] if audience else [])
    try:
        return jwt.decode(
            token, key, algorithms=[algorithm], issuer=issuer, audience=audience, leeway=leeway,
            options={"require": required, "verify_aud": bool(audience)},
        )
    except jwt.InvalidKeyError:
        raise
    except jwt.ExpiredSignatureError:
        raise JwtRefused("the token has expired (exp)") from None
    except jwt.ImmatureSignatureError as exc:
        claim = "iat" if "(iat)" in str(exc) else "nbf"
        text = "the token was issued in the future (iat)" if claim == "iat" else "the token is not valid yet (nbf)"
        raise JwtRefused(text) from None
    except jwt.MissingRequiredClaimError as exc:
        raise JwtRefused(f"the token has no '{exc.claim}' claim, which this trigger requires") from None
    except jwt.InvalidIssuerError:
        raise JwtRefused("the token's issuer (iss) is not the one this trigger expects") from None
    except jwt.InvalidAudienceError:
        raise JwtRefused("the token's audience (aud) does not name this trigger's audience") from None
    except jwt.InvalidSignatureError:
        raise JwtRefused("the token's signature does not match this trigger's key") from None
    except jwt.InvalidIssuedAtError:
        raise JwtRefused("the token's iat claim is not a number") from None
    except jwt.DecodeError as exc:
        for claim in ("exp", "nbf"):
            if f"({claim})" in str(exc):
                raise JwtRefused(f"the token's {claim} claim is not a number") from None
        raise JwtRefused("the token is malformed") from None
    except jwt.InvalidTokenError:
        raise JwtRefused("the token is invalid") from None
