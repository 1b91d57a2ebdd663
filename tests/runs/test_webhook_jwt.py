"""Webhook triggers authenticated by JWT: real tokens signed with HS256, RS256 and ES256 keys made here."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pipelines.errors import DefinitionError
from pipelines.models import PipelineRevision
from runs.models import Run
from tests.runs.test_webhook_trigger import pipeline, post, secret

pytestmark = pytest.mark.django_db

HS_SECRET = "a-shared-secret-of-at-least-32-bytes!"


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def claims(**extra):
    now = int(time.time())
    return {"sub": "partner-1", "iat": now, "exp": now + 300, **extra}


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def hs_pipeline(**extra):
    secret("jwt-secret", HS_SECRET)
    return pipeline(authentication="JWT", jwtAlgorithm="HS256", jwtSecretCode="jwt-secret",
                    allow_concurrent=True, **extra)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, payload: dict, sign=lambda signing_input: b"") -> str:
    """A token built by hand, for the ones PyJWT rightly refuses to make."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def test_it_accepts_a_valid_hs256_token_and_starts_a_run():
    hs_pipeline()
    token = jwt.encode(claims(), HS_SECRET, algorithm="HS256")
    response = post("/hooks/orders/", [{"sku": "a"}], **bearer(token))
    assert response.status_code == 202
    assert Run.objects.get(pk=response.json()["runId"]).seed_records == [{"sku": "a"}]


def test_it_accepts_rs256_and_es256_tokens_checked_with_the_configured_public_key(rsa_key, ec_key):
    pipeline("rsa", authentication="JWT", jwtAlgorithm="RS256", jwtPublicKey=public_pem(rsa_key))
    pipeline("ec", authentication="JWT", jwtAlgorithm="ES256", jwtPublicKey=public_pem(ec_key))
    assert post("/hooks/rsa/", {}, **bearer(jwt.encode(claims(), rsa_key, algorithm="RS256"))).status_code == 202
    assert post("/hooks/ec/", {}, **bearer(jwt.encode(claims(), ec_key, algorithm="ES256"))).status_code == 202
    # Each refuses a token made with the other's key (or another key of its own kind).
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_ec = ec.generate_private_key(ec.SECP256R1())
    for path, token in [("/hooks/rsa/", jwt.encode(claims(), other_rsa, algorithm="RS256")),
                        ("/hooks/ec/", jwt.encode(claims(), other_ec, algorithm="ES256")),
                        ("/hooks/rsa/", jwt.encode(claims(), ec_key, algorithm="ES256"))]:
        response = post(path, {}, **bearer(token))
        assert response.status_code == 401, path
    assert Run.objects.count() == 2


@pytest.mark.parametrize("token_claims, reason", [
    (claims(exp=int(time.time()) - 120), "the token has expired (exp)"),
    (claims(nbf=int(time.time()) + 600), "the token is not valid yet (nbf)"),
    (claims(iat=int(time.time()) + 600), "the token was issued in the future (iat)"),
    ({"sub": "partner-1", "iat": int(time.time())}, "the token has no 'exp' claim"),
    (claims(exp="tomorrow"), "the token's exp claim is not a number"),
])
def test_it_refuses_tokens_out_of_their_time_with_the_reason(token_claims, reason):
    hs_pipeline()
    token = jwt.encode(token_claims, HS_SECRET, algorithm="HS256")
    response = post("/hooks/orders/", {}, **bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == f"authentication failed: {reason}" or reason in response.json()["error"]
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert token not in response.content.decode() and HS_SECRET not in response.content.decode()
    assert not Run.objects.exists()


def test_it_allows_the_configured_leeway_and_no_more():
    hs_pipeline(jwtLeewaySec=60)
    now = int(time.time())
    assert post("/hooks/orders/", {}, **bearer(jwt.encode(claims(exp=now - 30), HS_SECRET))).status_code == 202
    assert post("/hooks/orders/", {}, **bearer(jwt.encode(claims(nbf=now + 30), HS_SECRET))).status_code == 202
    assert post("/hooks/orders/", {}, **bearer(jwt.encode(claims(exp=now - 90), HS_SECRET))).status_code == 401


def test_it_checks_issuer_and_audience_when_configured():
    hs_pipeline(jwtIssuer="https://shop.example.com", jwtAudience=["datahub", "datahub-eu"])
    good = claims(iss="https://shop.example.com", aud="datahub-eu")
    assert post("/hooks/orders/", {}, **bearer(jwt.encode(good, HS_SECRET))).status_code == 202
    for token_claims, reason in [
        ({**good, "iss": "https://evil.example.com"}, "issuer (iss) is not the one this trigger expects"),
        ({**good, "aud": "someone-else"}, "audience (aud) does not name this trigger's audience"),
        ({k: v for k, v in good.items() if k != "iss"}, "no 'iss' claim"),
        ({k: v for k, v in good.items() if k != "aud"}, "no 'aud' claim"),
    ]:
        response = post("/hooks/orders/", {}, **bearer(jwt.encode(token_claims, HS_SECRET)))
        assert response.status_code == 401 and reason in response.json()["error"], reason
    assert Run.objects.count() == 1


def test_it_refuses_a_token_signed_with_another_secret_and_malformed_headers():
    hs_pipeline()
    cases = [
        (bearer(jwt.encode(claims(), "another-secret-also-32-bytes-long!!", algorithm="HS256")),
         "signature does not match"),
        ({}, "no bearer token in the Authorization header"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "no bearer token"),
        (bearer("not.a.token"), "the token is malformed"),
        (bearer("garbage"), "the token is malformed"),
    ]
    for headers, reason in cases:
        response = post("/hooks/orders/", {}, **headers)
        assert response.status_code == 401 and reason in response.json()["error"], headers


def test_it_refuses_unsigned_tokens_alg_none():
    hs_pipeline()
    token = hand_made({"alg": "none", "typ": "JWT"}, claims())
    response = post("/hooks/orders/", {}, **bearer(token))
    assert response.status_code == 401
    assert "alg none" in response.json()["error"]
    assert not Run.objects.exists()


def test_it_refuses_an_hs256_token_signed_with_the_rs256_public_key(rsa_key):
    """The confusion attack: the public key is public, so an attacker can HMAC with it."""
    pem = public_pem(rsa_key)
    pipeline(authentication="JWT", jwtAlgorithm="RS256", jwtPublicKey=pem)
    token = hand_made({"alg": "HS256", "typ": "JWT"}, claims(),
                      lambda signing_input: hmac.new(pem.encode(), signing_input, hashlib.sha256).digest())
    response = post("/hooks/orders/", {}, **bearer(token))
    assert response.status_code == 401
    assert "not signed with RS256, the only algorithm this trigger accepts" in response.json()["error"]
    # And an HS256 trigger never takes a PEM key as its secret.
    secret("pem-as-secret", pem)
    pipeline("hs", authentication="JWT", jwtAlgorithm="HS256", jwtSecretCode="pem-as-secret")
    signed = hand_made({"alg": "HS256", "typ": "JWT"}, claims(),
                       lambda signing_input: hmac.new(pem.encode(), signing_input, hashlib.sha256).digest())
    assert post("/hooks/hs/", {}, **bearer(signed)).status_code == 503
    assert not Run.objects.exists()


def test_it_answers_503_when_the_hs256_secret_is_missing():
    pipeline(authentication="JWT", jwtAlgorithm="HS256", jwtSecretCode="never-created")
    response = post("/hooks/orders/", {}, **bearer(jwt.encode(claims(), HS_SECRET)))
    assert response.status_code == 503 and "never-created" not in response.json()["error"]


def test_it_refuses_bad_jwt_settings_when_the_definition_is_saved(rsa_key, ec_key):
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    bad = [
        ({}, "config.jwtAlgorithm", "needs jwtAlgorithm: HS256, RS256, ES256"),
        ({"jwtAlgorithm": "HS256"}, "config.jwtSecretCode", "HS256 needs jwtSecretCode"),
        ({"jwtAlgorithm": "HS256", "jwtSecretCode": "s", "jwtPublicKey": public_pem(rsa_key)},
         "config.jwtPublicKey", "not a public key"),
        ({"jwtAlgorithm": "RS256"}, "config.jwtPublicKey", "RS256 needs jwtPublicKey"),
        ({"jwtAlgorithm": "RS256", "jwtPublicKey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
         "config.jwtPublicKey", "not a PEM public key"),
        ({"jwtAlgorithm": "RS256", "jwtPublicKey": public_pem(ec_key)}, "config.jwtPublicKey", "needs an RSA public key"),
        ({"jwtAlgorithm": "RS256", "jwtPublicKey": public_pem(small_rsa)}, "config.jwtPublicKey", "1024 bits"),
        ({"jwtAlgorithm": "ES256", "jwtPublicKey": public_pem(rsa_key)}, "config.jwtPublicKey", "P-256"),
        ({"jwtAlgorithm": "ES256", "jwtPublicKey": public_pem(ec_key), "jwtSecretCode": "s"},
         "config.jwtSecretCode", "not a secret"),
        ({"jwtAlgorithm": "HS512", "jwtSecretCode": "s"}, "config.jwtAlgorithm", "HS512"),
        ({"jwtAlgorithm": "HS256", "jwtSecretCode": "s", "jwtLeewaySec": 3600}, "config.jwtLeewaySec", "300"),
    ]
    for config, field, message in bad:
        with pytest.raises(DefinitionError) as caught:
            pipeline(authentication="JWT", **config)
        text = str(caught.value)
        assert field in text and message in text, (config, text)


def test_it_refuses_at_the_door_a_stored_trigger_whose_public_key_is_unusable(rsa_key):
    stored = pipeline(authentication="JWT", jwtAlgorithm="RS256", jwtPublicKey=public_pem(rsa_key))
    d = stored.current_revision.definition
    d["steps"][0]["config"]["jwtPublicKey"] = "not a key"
    PipelineRevision.objects.filter(pk=stored.current_revision.pk).update(definition=d)
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert post("/hooks/orders/", {}, **bearer(token)).status_code == 503


def test_the_trigger_checks_import_no_django():
    import subprocess
    import sys

    code = "import sys; import runs.engine.triggers; assert 'django' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
