"""The v1 API through the handler, with HTTP API v2 events: the contract clients rely on."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from hera_sessions.http.event import http_api_event
from tests.apiclient import Answer, Api
from tests.conftest import SERVICE_KEY
from tests.images import jpeg, png

SID_PATTERN = r"^[A-Za-z0-9_-]{32}$"


PHOTO = png(size=120)  # a real PNG: the event path reads what it records


@pytest.fixture(params=["local", "redis"])
def api(request: pytest.FixtureRequest, local_env: dict[str, str], make_runtime: Any) -> Api:
    """The API on the embedded default, and on Redis metadata (the seed's staging: SESSION_TYPE=redis)."""
    env = {**local_env, "SESSION_MAX_FILES": "3", "SESSION_MAX_BYTES": "1000"}
    if request.param == "redis":
        env |= {"SESSION_TYPE": "redis", "REDIS_URL": request.getfixturevalue("redis_server").url}
    return Api(make_runtime(env))


def upload(api: Api, sid: str, token: str, **body: Any) -> Answer:
    request = {"path": "photos/user.png", "content_type": "image/png", "size": 100, **body}
    return api("POST", f"/v1/sessions/{sid}/uploads", request, token)


# -- sessions ----------------------------------------------------------------------------------------------


def test_creating_a_session_takes_a_service_key(api: Api) -> None:
    assert api("POST", "/v1/sessions").code == "missing_token"
    assert api("POST", "/v1/sessions", token="wrong").code == "invalid_service_key"
    created = api("POST", "/v1/sessions", token=SERVICE_KEY)
    assert created.status == 201
    assert set(created.body) == {"session_id", "token", "expires_at"}
    assert len(created.body["session_id"]) == 32
    assert created.headers["Cache-Control"] == "no-store"


def test_local_mode_without_keys_lets_anyone_create_a_session(local_env: dict[str, str], make_runtime: Any) -> None:
    env = {k: v for k, v in local_env.items() if k != "SERVICE_API_KEYS"}
    assert Api(make_runtime(env))("POST", "/v1/sessions").status == 201


def test_a_token_reads_its_own_session_only(api: Api) -> None:
    sid, token = api.session()
    other_sid, other_token = api.session()
    assert api("GET", f"/v1/sessions/{sid}/files", token=token).status == 200
    assert api("GET", f"/v1/sessions/{sid}/files").status == 401
    assert api("GET", f"/v1/sessions/{sid}/files", token=other_token).code == "invalid_token"
    assert api("GET", f"/v1/sessions/{sid}/files", token="v1.forged.token").status == 403
    assert api("GET", f"/v1/sessions/{sid}/files", token=SERVICE_KEY).status == 200  # the backend reads any
    assert api("GET", f"/v1/sessions/{other_sid}/files", token=token).status == 403


def test_malformed_and_unknown_session_ids(api: Api) -> None:
    _, token = api.session()
    assert api("GET", "/v1/sessions/short/files", token=token).code == "invalid_session_id"
    unknown = "A" * 32
    assert api("GET", f"/v1/sessions/{unknown}/files", token=SERVICE_KEY).code == "session_not_found"


# -- uploads -----------------------------------------------------------------------------------------------


def test_an_upload_ticket_for_put(api: Api) -> None:
    sid, token = api.session()
    answer = upload(api, sid, token, size=500)
    assert answer.status == 201
    ticket = answer.body
    assert ticket["protocol"] == "put"
    assert ticket["method"] == "PUT"
    assert ticket["headers"] == {"Content-Type": "image/png", "If-None-Match": "*"}  # no silent overwrite
    assert ticket["fields"] == {}
    assert ticket["key"] == f"sessions/{sid}/photos/user.png"
    assert ticket["upload_id"] is None
    assert ticket["expires_at"].endswith("Z")


def test_an_upload_ticket_for_post(api: Api) -> None:
    sid, token = api.session()
    ticket = upload(api, sid, token, method="POST").body
    assert (ticket["protocol"], ticket["method"]) == ("post", "POST")
    assert ticket["fields"]["key"] == f"sessions/{sid}/photos/user.png"
    assert ticket["fields"]["Content-Type"] == "image/png"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"path": "../x.png"}, 400, "invalid_path"),
        ({"path": "/photos/user.png"}, 400, "invalid_path"),
        ({"path": "photos/us er.png"}, 400, "invalid_path"),
        ({"path": "photos/ü.png"}, 400, "invalid_path"),
        ({"path": 7}, 400, "invalid_path"),
        ({"path": "photos/user.jpg"}, 400, "extension_mismatch"),
        ({"content_type": "image/gif", "path": "a.gif"}, 415, "content_type_not_allowed"),
        ({"content_type": 5}, 400, "invalid_content_type"),
        ({"size": 0}, 400, "invalid_size"),
        ({"size": -1}, 400, "invalid_size"),
        ({"size": "100"}, 400, "invalid_size"),
        ({"size": 100.0}, 400, "invalid_size"),
        ({"size": True}, 400, "invalid_size"),
        ({"size": 10 * 1024 * 1024 + 1}, 413, "file_too_large"),
        ({"method": "GET"}, 400, "invalid_method"),
        ({"colour": "blue"}, 400, "unknown_field"),
        ({"name": ""}, 400, "invalid_name"),
        ({"name": None}, 400, "invalid_name"),
        ({"name": 7}, 400, "invalid_name"),
        ({"name": "bell\x07.png"}, 400, "invalid_name"),
        ({"name": "tab\t.png"}, 400, "invalid_name"),
        ({"name": "del\x7f.png"}, 400, "invalid_name"),
        ({"name": "c1\x85.png"}, 400, "invalid_name"),
        ({"name": "\ud800.png"}, 400, "invalid_json"),  # a lone surrogate: refused as JSON already
        ({"name": "é" * 128}, 400, "invalid_name"),  # 256 bytes of UTF-8
        ({"content_md5": "abc"}, 400, "invalid_content_md5"),
        ({"content_md5": "d41d8cd98f00b204e9800998ecf8427e"}, 400, "invalid_content_md5"),  # hex, not base64
        ({"content_md5": "AAAAAAAAAAAAAAAAAAAAAAAA"}, 400, "invalid_content_md5"),  # 18 bytes
        ({"content_md5": 5}, 400, "invalid_content_md5"),
        ({"overwrite": "yes"}, 400, "invalid_overwrite"),
        ({"overwrite": 1}, 400, "invalid_overwrite"),
    ],
)
def test_bad_upload_requests_get_a_specific_4xx(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    sid, token = api.session()
    answer = upload(api, sid, token, **body)
    assert (answer.status, answer.code) == (status, code)
    assert answer.body["error"]["message"]


def test_missing_fields_and_malformed_json(api: Api) -> None:
    sid, token = api.session()
    url = f"/v1/sessions/{sid}/uploads"
    assert api("POST", url, {"path": "a.png", "size": 1}, token).code == "missing_field"
    assert api("POST", url, raw="{not json", token=token).code == "invalid_json"
    assert api("POST", url, raw="", token=token).code == "invalid_json"
    assert api("POST", url, raw="[1, 2]", token=token).code == "invalid_body"


def test_the_quota_is_reserved_when_a_ticket_is_issued(api: Api) -> None:
    sid, token = api.session()
    for i in range(3):
        assert upload(api, sid, token, path=f"p/{i}.png").status == 201
    assert upload(api, sid, token, path="p/0.png").status == 201  # the same path again: counted once
    answer = upload(api, sid, token, path="p/3.png")
    assert (answer.status, answer.code) == (409, "quota_exceeded")


def test_the_byte_quota(api: Api) -> None:
    sid, token = api.session()
    assert upload(api, sid, token, path="p/0.png", size=900).status == 201
    assert upload(api, sid, token, path="p/1.png", size=101).code == "quota_exceeded"


def test_local_storage_has_no_large_file_protocol(api: Api) -> None:
    sid, token = api.session()
    upload_id = "none"
    assert api("POST", f"/v1/sessions/{sid}/uploads/{upload_id}/complete", {"parts": []}, token).code == "invalid_parts"
    parts = {"parts": [{"part_number": 1, "etag": "x"}]}
    assert api("POST", f"/v1/sessions/{sid}/uploads/{upload_id}/complete", parts, token).code == "upload_not_found"
    assert api("DELETE", f"/v1/sessions/{sid}/uploads/{upload_id}", token=token).code == "upload_not_found"


def test_a_path_holding_a_file_is_409_unless_the_upload_may_overwrite(api: Api) -> None:
    # GIVEN photos/image.jpg is recorded
    sid, token = api.session()
    photo = jpeg()
    first = upload(api, sid, token, path="photos/image.jpg", content_type="image/jpeg", size=len(photo))
    assert first.status == 201
    retry = upload(api, sid, token, path="photos/image.jpg", content_type="image/jpeg", size=len(photo))
    assert retry.status == 201  # the same file asking again
    api.record(sid, "photos/image.jpg", photo)

    # WHEN a second picked image.jpg asks for the same path THEN 409 file_exists; the first photo is untouched
    again = upload(api, sid, token, path="photos/image.jpg", content_type="image/jpeg", size=6)
    assert (again.status, again.code) == (409, "file_exists")
    assert "overwrite" in again.body["error"]["message"]
    assert api.runtime.service().storage.read(f"sessions/{sid}/photos/image.jpg") == photo

    # ... and with "overwrite": true it gets a ticket without the storage precondition
    replacing = upload(api, sid, token, path="photos/image.jpg", content_type="image/jpeg", size=6, overwrite=True)
    assert replacing.status == 201
    assert "If-None-Match" not in replacing.body["headers"]


def test_the_ticket_hands_the_client_the_md5_header(api: Api) -> None:
    sid, token = api.session()
    ticket = upload(api, sid, token, size=5, content_md5="gnzLDuqKcGxMNKFokfhOew==").body
    assert ticket["headers"]["Content-MD5"] == "gnzLDuqKcGxMNKFokfhOew=="
    assert "X-Hera-MD5=gnzLDuqKcGxMNKFokfhOew%3D%3D" in ticket["url"]  # signed into the URL


# -- files -------------------------------------------------------------------------------------------------


def test_names_are_kept_as_given_nfc_normalised(api: Api) -> None:
    sid, token = api.session()
    decomposed = "Cafe\u0301 \u2013 東京 😀.png"  # "é" as e + combining acute: NFC makes it one character
    photo = png()
    md5 = base64.b64encode(hashlib.md5(photo).digest()).decode()
    assert upload(api, sid, token, size=len(photo), name=decomposed, content_md5=md5).status == 201
    assert upload(api, sid, token, path="plain.png", size=len(photo)).status == 201
    api.record(sid, "photos/user.png", photo)
    api.record(sid, "plain.png", photo)

    listed = {f["path"]: f for f in api("GET", f"/v1/sessions/{sid}/files", token=token).body["files"]}
    assert listed["photos/user.png"]["name"] == "Café \u2013 東京 😀.png"
    assert listed["photos/user.png"]["content_md5"] == md5
    assert listed["plain.png"]["name"] == "plain.png"  # default: the path's last segment
    assert listed["plain.png"]["content_md5"] is None
    assert {"width", "height", "location"} <= listed["plain.png"].keys()

    got = api("GET", f"/v1/sessions/{sid}/files/photos/user.png", token=token).body
    assert got["name"] == "Café \u2013 東京 😀.png"
    assert "filename%2A%3DUTF-8%27%27Caf%25C3%25A9" in got["url"]  # the download saves under the name


def test_files_are_listed_from_metadata_and_downloaded(api: Api) -> None:
    sid, token = api.session()
    assert upload(api, sid, token, size=len(PHOTO)).status == 201
    api.record(sid, "photos/user.png", PHOTO)
    listed = api("GET", f"/v1/sessions/{sid}/files", token=token).body["files"]
    assert [(f["path"], f["size"], f["content_type"]) for f in listed] == [("photos/user.png", len(PHOTO), "image/png")]
    assert isinstance(listed[0]["size"], int)
    got = api("GET", f"/v1/sessions/{sid}/files/photos/user.png", token=token)
    assert got.status == 200
    assert got.body["path"] == "photos/user.png"
    assert got.body["url"].startswith("http://127.0.0.1:")
    redirect = api("GET", f"/v1/sessions/{sid}/files/photos/user.png?redirect=true", token=token)
    assert redirect.status == 302
    assert redirect.headers["Location"].startswith("http://")


def test_file_paths_in_urls_are_decoded_once_and_checked(api: Api) -> None:
    sid, token = api.session()
    api.record(sid, "photos/user.png", PHOTO)
    assert api("GET", f"/v1/sessions/{sid}/files/photos%2Fuser.png", token=token).status == 200
    for bad in ("photos/%2E%2E/x.png", "photos/%252E%252E/x.png", "%2Fetc/passwd.png", "photos/%FF.png"):
        answer = api("GET", f"/v1/sessions/{sid}/files/{bad}", token=token)
        assert (answer.status, answer.code) == (400, "invalid_path"), bad
    assert api("GET", f"/v1/sessions/{sid}/files/photos/none.png", token=token).code == "file_not_found"


def test_deleting_a_file_removes_object_and_record(api: Api) -> None:
    sid, token = api.session()
    api.record(sid, "photos/user.png", PHOTO)
    assert api("DELETE", f"/v1/sessions/{sid}/files/photos/user.png", token=token).status == 204
    assert api("GET", f"/v1/sessions/{sid}/files", token=token).body == {"files": []}
    assert api("DELETE", f"/v1/sessions/{sid}/files/photos/user.png", token=token).code == "file_not_found"
    assert list(api.runtime.service().storage.list_prefix(f"sessions/{sid}/")) == []


# -- documents ---------------------------------------------------------------------------------------------


def test_meta_documents_round_trip(api: Api) -> None:
    sid, token = api.session()
    profile = {"age": 30, "name": "花子"}
    assert api("PUT", f"/v1/sessions/{sid}/meta/user_profile", profile, token).status == 204
    assert api("GET", f"/v1/sessions/{sid}/meta/user_profile", token=token).body == profile
    assert api("DELETE", f"/v1/sessions/{sid}/meta/user_profile", token=token).status == 204
    assert api("GET", f"/v1/sessions/{sid}/meta/user_profile", token=token).code == "meta_not_found"
    assert api("DELETE", f"/v1/sessions/{sid}/meta/user_profile", token=token).code == "meta_not_found"


def test_bad_meta_requests(local_env: dict[str, str], make_runtime: Any) -> None:
    api = Api(make_runtime({**local_env, "META_MAX_BYTES": "100"}))
    sid, token = api.session()
    assert api("PUT", f"/v1/sessions/{sid}/meta/bad.name", {}, token).code == "invalid_meta_name"
    assert api("PUT", f"/v1/sessions/{sid}/meta/" + "x" * 65, {}, token).code == "invalid_meta_name"
    assert api("PUT", f"/v1/sessions/{sid}/meta/doc", raw="{nope", token=token).code == "invalid_json"
    too_big = api("PUT", f"/v1/sessions/{sid}/meta/doc", {"text": "x" * 200}, token)
    assert (too_big.status, too_big.code) == (413, "meta_too_large")


# -- erasing -----------------------------------------------------------------------------------------------


def test_erasing_a_session_removes_everything_and_it_stays_erased(api: Api) -> None:
    sid, token = api.session()
    ticket = upload(api, sid, token, size=len(PHOTO)).body
    api.record(sid, "photos/user.png", PHOTO)
    api("PUT", f"/v1/sessions/{sid}/meta/conversation", [{"role": "user", "text": "hi"}], token)
    assert api("DELETE", f"/v1/sessions/{sid}", token=token).status == 204
    assert api("DELETE", f"/v1/sessions/{sid}", token=token).status == 204  # idempotent: a retry is safe
    assert api("DELETE", f"/v1/sessions/{'B' * 32}", token=SERVICE_KEY).code == "session_not_found"
    assert api("GET", f"/v1/sessions/{sid}/files", token=token).code == "session_erased"
    assert api("GET", f"/v1/sessions/{sid}/meta/conversation", token=token).status == 410
    assert upload(api, sid, token).status == 410
    storage = api.runtime.service().storage
    assert list(storage.list_prefix(f"sessions/{sid}/")) == []
    # an upload through a URL issued before the erasure leaves nothing behind
    assert ticket["key"] == f"sessions/{sid}/photos/user.png"
    api.record(sid, "photos/user.png", PHOTO)
    assert list(storage.list_prefix(f"sessions/{sid}/")) == []


# -- the rest of the contract --------------------------------------------------------------------------------


def test_health(api: Api) -> None:
    answer = api("GET", "/health")
    assert answer.status == 200
    assert answer.body == {"status": "ok", "checks": {"metadata": "ok", "storage": "ok"}}


def test_unknown_routes_and_methods(api: Api) -> None:
    sid, token = api.session()
    assert api("GET", "/nope").code == "route_not_found"
    not_allowed = api("PATCH", f"/v1/sessions/{sid}/files", token=token)
    assert (not_allowed.status, not_allowed.code) == (405, "method_not_allowed")
    assert not_allowed.headers["Allow"] == "GET"
    assert api("PUT", "/v1/sessions").status == 405
    assert api("POST", "/health").status == 405


def test_cors_preflights_answer_only_allowed_origins(local_env: dict[str, str], make_runtime: Any) -> None:
    api = Api(make_runtime({**local_env, "CORS_ALLOWED_ORIGINS": "https://app.example.com"}))
    sid, _ = api.session()
    preflight = {"origin": "https://app.example.com", "access-control-request-method": "POST"}
    allowed = api("OPTIONS", f"/v1/sessions/{sid}/uploads", headers=preflight)
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    evil = api("OPTIONS", f"/v1/sessions/{sid}/uploads", headers={**preflight, "origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers


def test_no_cors_headers_without_configured_origins(api: Api) -> None:
    answer = api("GET", "/health", headers={"origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_errors_never_leak_a_stack_trace(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    sid, token = api.session()
    service = api.runtime.service()

    def boom(*args: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "list_files", boom)
    answer = api("GET", f"/v1/sessions/{sid}/files", token=token)
    assert (answer.status, answer.code) == (500, "internal_error")
    assert "secret internals" not in json.dumps(answer.body)


def test_a_redis_that_is_down_answers_503_quickly(local_env: dict[str, str], make_runtime: Any, tmp_path: Any) -> None:
    from tests.conftest import RedisServer

    redis = RedisServer(tmp_path / "redis")
    api = Api(make_runtime({**local_env, "SESSION_TYPE": "redis", "REDIS_URL": redis.url, "REDIS_TIMEOUT": "0.5"}))
    sid, token = api.session()
    redis.stop()
    for answer in (api("GET", f"/v1/sessions/{sid}/files", token=token), upload(api, sid, token)):
        assert (answer.status, answer.code) == (503, "metadata_unavailable")
    health = api("GET", "/health")
    assert health.status == 503
    assert health.body["checks"]["metadata"] == "metadata_unavailable"
    redis.start()
    assert api("GET", "/health").status == 200
    redis.stop()


HOSTILE_JSON = [
    "[" * 100_000 + "]" * 100_000,  # nesting deep enough to break a recursive parser
    '{"x": NaN}',  # NaN and Infinity are not JSON
    '{"x": -Infinity}',
    '{"x": 1e400}',  # overflows to infinity, which JSON cannot carry back
    '{"x": [-1e400]}',
    '{"x": "\\ud800"}',  # a lone surrogate: no UTF-8 for it
    '{"\\udfff": 1}',
    '{"x": {"y": "a\\udc00b"}}',
    '{"x": ' + "9" * 5_000 + "}",  # past Python's int-from-string limit
    '{"x": -' + "1" * 5_000 + "}",
    "\ufeff{}",  # a byte order mark is not JSON
]


@pytest.mark.parametrize("raw", HOSTILE_JSON, ids=lambda raw: raw[:24])
def test_hostile_json_is_a_400_on_every_route_with_a_body(api: Api, raw: str) -> None:
    sid, token = api.session()
    for method, path in (
        ("PUT", f"/v1/sessions/{sid}/meta/doc"),
        ("POST", f"/v1/sessions/{sid}/uploads"),
        ("POST", f"/v1/sessions/{sid}/uploads/none/complete"),
    ):
        answer = api(method, path, raw=raw, token=token)
        assert (answer.status, answer.code) == (400, "invalid_json"), path
        assert answer.body["error"]["message"]
    assert api("GET", f"/v1/sessions/{sid}/meta/doc", token=token).code == "meta_not_found"


def test_documents_keep_valid_surrogate_pairs_and_big_numbers(api: Api) -> None:
    sid, token = api.session()
    raw = '{"emoji": "\\ud83d\\ude00", "big": ' + "9" * 4_000 + ', "small": 1e-400, "x": 1.5e300}'
    assert api("PUT", f"/v1/sessions/{sid}/meta/doc", raw=raw, token=token).status == 204
    got = api("GET", f"/v1/sessions/{sid}/meta/doc", token=token).body
    assert got == {"emoji": "\U0001f600", "big": int("9" * 4_000), "small": 0.0, "x": 1.5e300}


NOT_UTF8 = [b"\xff\xfe{", b'{"x": "\xed\xa0\x80"}', b"\xef\xbb\xbf{}"]  # bad bytes, an encoded surrogate, a BOM


@pytest.mark.parametrize("body", NOT_UTF8, ids=["bad", "surrogate", "bom"])
def test_a_body_that_is_not_utf8_is_invalid_json_on_every_route(api: Api, body: bytes) -> None:
    sid, token = api.session()
    for method, path in (
        ("PUT", f"/v1/sessions/{sid}/meta/doc"),
        ("POST", f"/v1/sessions/{sid}/uploads"),
        ("POST", f"/v1/sessions/{sid}/uploads/none/complete"),
    ):
        answer = api.runtime.handle_http(http_api_event(method, path, {"authorization": f"Bearer {token}"}, body))
        assert answer["statusCode"] == 400, path
        assert json.loads(answer["body"])["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("name", ["authorization", "Authorization", "AUTHORIZATION"])
def test_the_token_is_found_whatever_the_case_of_the_header_name(api: Api, name: str) -> None:
    # API Gateway lowercases header names in payload v2; sam local start-api keeps them as the client sent them
    sid, token = api.session()
    event = http_api_event("GET", f"/v1/sessions/{sid}/files", {}, b"")
    event["headers"] = {name: f"Bearer {token}", "Host": "localhost"}
    assert api.runtime.handle_http(event)["statusCode"] == 200
    event["headers"] = {"Host": "localhost"}
    assert json.loads(api.runtime.handle_http(event)["body"])["error"]["code"] == "missing_token"


def test_a_bad_base64_body_is_invalid_json(api: Api) -> None:
    sid, token = api.session()
    event = http_api_event("PUT", f"/v1/sessions/{sid}/meta/doc", {"authorization": f"Bearer {token}"}, b"{}")
    event |= {"body": "not base64!", "isBase64Encoded": True}
    answer = api.runtime.handle_http(event)
    assert (answer["statusCode"], json.loads(answer["body"])["error"]["code"]) == (400, "invalid_json")


def test_an_oversized_document_is_413_whatever_it_holds(local_env: dict[str, str], make_runtime: Any) -> None:
    api = Api(make_runtime({**local_env, "META_MAX_BYTES": "100"}))
    sid, token = api.session()
    for raw in ('{"x": "' + "\\ud800" * 20 + '"}', "[" * 200, '{"x": ' + "9" * 200 + "}"):
        answer = api("PUT", f"/v1/sessions/{sid}/meta/doc", raw=raw, token=token)
        assert (answer.status, answer.code) == (413, "meta_too_large")
    event = http_api_event("PUT", f"/v1/sessions/{sid}/meta/doc", {"authorization": f"Bearer {token}"}, b"\xff" * 101)
    assert json.loads(api.runtime.handle_http(event)["body"])["error"]["code"] == "meta_too_large"


@pytest.mark.parametrize("token", ["v1.é.x", "v1.\u0000.y", "ünïcode"])
def test_non_ascii_tokens_are_403_not_500(api: Api, token: str) -> None:
    sid, _ = api.session()
    assert api("GET", f"/v1/sessions/{sid}/files", token=token).status == 403


def test_a_snapstart_init_builds_everything_without_connecting(local_env: dict[str, str], make_runtime: Any) -> None:
    from tests.conftest import free_port

    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: building must not connect
    runtime = make_runtime(
        {**local_env, "SESSION_TYPE": "redis", "REDIS_URL": closed, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
    )
    runtime.prepare_snapshot()
    assert runtime._app is not None
    assert runtime._service is not None
