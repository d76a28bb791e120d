"""The routes of `/api/v1`. Each parses the request into its pydantic model, calls one core
function with the token as the actor (`api:NAME`), and renders the answer; the core's policy
decides what the token's scopes allow. See api.guard for what every request passes first."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
from typing import Any

from flask import Blueprint, Flask, Response, request
from pydantic import BaseModel, ValidationError

from bot import idempotency, tokens
from bot.core import Core
from bot.errors import DomainError, Forbidden, InvalidInput, NotFound
from bot.incidents import records, steps
from bot.incidents.lifecycle import add_note
from bot.intake import EvidenceItem, declare_with_evidence
from bot.wellbeing import log_exposure

from . import models
from .guard import ApiError, TokenBuckets, bearer, read_json, refuse_content
from .openapi import Operation, document

PREFIX = "/api/v1"
LIMITER = "safeguard_api_limiter"
log = logging.getLogger("safeguard.api")
NUMBER = {"type": "integer", "minimum": 1, "maximum": models.MAX_INT}
STEP = {"type": "string", "minLength": 1, "maxLength": 64}

OPERATIONS = [
    Operation("post", "/incidents", "Declare an incident (or add a sighting to the open one holding a hash)",
              "declare", {201: models.DeclareResponse, 200: models.DeclareResponse}, body=models.DeclareRequest),
    Operation("get", "/incidents", "Find incidents", "read", {200: models.IncidentList}, query=models.ListQuery),
    Operation("get", "/incidents/{number}", "An incident: steps, clocks, open pages", "read",
              {200: models.IncidentDetail}, path_params={"number": NUMBER}),
    Operation("get", "/incidents/{number}/timeline", "The incident's timeline (the timeline JSON contract)",
              "read", {200: models.Timeline}, path_params={"number": NUMBER}),
    Operation("post", "/incidents/{number}/steps/{step}", "Mark a step done (with field values) or skipped",
              "update", {200: models.StepResponse}, body=models.StepRequest,
              path_params={"number": NUMBER, "step": STEP}),
    Operation("post", "/incidents/{number}/notes", "Add a note to the timeline", "update",
              {201: models.NoteResponse}, body=models.NoteRequest, path_params={"number": NUMBER}),
    Operation("post", "/exposure", "Log what a person viewed (the private exposure ledger)", "exposure",
              {201: models.ExposureResponse}, body=models.ExposureRequest),
]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error(err: ApiError) -> Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
    return _json(err.status, err.body(), headers)


def from_validation(err: ValidationError) -> ApiError:
    """422 naming the first field at fault (pydantic's message, never the value sent)."""
    first = err.errors(include_url=False)[0]
    where = ""
    for part in first.get("loc", ()):  # evidence[0].sha256, as the content check names fields
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    where = where or "body"
    message = first.get("msg", "invalid")
    return ApiError(422, "invalid", f"`{where[:100]}`: {message}"[:500], where[:100])


def from_domain(err: DomainError, rename: dict[str, str] | None = None) -> ApiError:
    if isinstance(err, idempotency.KeyConflict):
        return ApiError(409, "conflict", str(err))
    if isinstance(err, NotFound):
        return ApiError(404, "not_found", str(err))
    if isinstance(err, Forbidden):
        return ApiError(403, "forbidden", str(err))
    if isinstance(err, InvalidInput) and err.fields:
        key = next(iter(err.fields))
        field = (rename or {}).get(key, key)
        return ApiError(422, "invalid", str(err), field)
    return ApiError(409, "conflict", str(err))  # the incident's state does not allow it (closed, done…)


def _answer(run) -> tuple[int, Any, dict[str, str]]:
    """Run a route's work; every refusal becomes its status and error body."""
    try:
        status, body = run()
        return status, body, {}
    except ApiError as err:
        return err.status, err.body(), ({"Retry-After": str(err.retry_after)} if err.retry_after else {})
    except ValidationError as err:
        return 422, from_validation(err).body(), {}
    except DomainError as err:
        return from_domain(err).status, from_domain(err).body(), {}


def register_api(web: Flask, core: Core) -> None:
    # Kept on the app (not in a closure) so an operator's tooling, or a test, can swap it.
    web.extensions[LIMITER] = TokenBuckets(core.settings.api_rate, core.settings.api_burst)
    api = Blueprint("api", __name__, url_prefix=PREFIX)

    def base_url() -> str:
        return (core.settings.public_url or request.host_url).rstrip("/") + PREFIX

    def caller() -> tokens.TokenInfo:
        info = tokens.authenticate(core.db, bearer(request))
        if info is None:
            raise ApiError(401, "unauthorized", "This token is unknown or revoked.")
        web.extensions[LIMITER].take(info.name)
        return info

    def body_of(model: type[BaseModel]) -> tuple[BaseModel, Any]:
        data = read_json(request)
        refuse_content(data)
        return model.model_validate(data), data

    def endpoint(fn):
        """Errors become JSON answers; anything unexpected an error id the log repeats, never a
        traceback or the request's body."""

        @functools.wraps(fn)
        def wrapper(**kwargs):
            try:
                return fn(**kwargs)
            except ApiError as err:
                return _error(err)
            except ValidationError as err:
                return _error(from_validation(err))
            except DomainError as err:
                return _error(from_domain(err))
            except Exception:  # noqa: BLE001 (answer with an id, log the traceback under it)
                error_id = "E-" + secrets.token_hex(4).upper()
                log.exception("%s: unexpected error in %s %s", error_id, request.method, request.path)
                return _json(500, {"error": "internal", "message": f"Something went wrong ({error_id})."})

        return wrapper

    def once(info: tokens.TokenInfo, data: Any, run) -> Response:
        """Answer a POST, or give the first answer again for a repeated Idempotency-Key."""
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return _json(*_answer(run))
        if not (1 <= len(key) <= 255 and key.isascii() and key.isprintable() and " " not in key):
            raise ApiError(400, "bad_request", "Idempotency-Key is 1–255 printable ASCII characters without spaces.")
        digest = hashlib.sha256(json.dumps([request.method, request.path, data], sort_keys=True,
                                           separators=(",", ":")).encode()).hexdigest()
        replay = idempotency.begin(core.db, info.name, key, digest)
        if replay is not None:
            return _json(replay.status, replay.body, {"Idempotent-Replayed": "true"})
        try:
            status, body, headers = _answer(run)
        except BaseException:
            idempotency.abandon(core.db, info.name, key)
            raise
        if status == 429:
            idempotency.abandon(core.db, info.name, key)
        else:
            idempotency.finish(core.db, info.name, key, status, body)
        return _json(status, body, headers)

    @api.post("/incidents")
    @endpoint
    def declare_incident():
        info = caller()
        req, data = body_of(models.DeclareRequest)

        def run():
            items = [EvidenceItem(hashes=e.hashes(), content_id=e.content_id, source=e.source) for e in req.evidence]
            try:
                result = declare_with_evidence(core, playbook_id=req.playbook, summary=req.summary, actor=info.actor,
                                               severity=req.severity, external_id=req.external_id, evidence=items)
            except NotFound as err:
                if "playbook" in str(err):  # an unknown playbook is a field of the request, not a missing page
                    raise ApiError(422, "invalid", str(err), "playbook") from None
                raise
            answer = models.DeclareResponse(
                number=result.number, ref=result.ref, channel_id=result.channel_id, channel_name=result.channel_name,
                status=result.status, url=f"{base_url()}/incidents/{result.number}", merged=result.merged,
                sightings=result.sightings)
            return (200 if result.merged else 201), answer.model_dump(mode="json")

        return once(info, data, run)

    def summary_of(record: records.IncidentRecord) -> dict[str, Any]:
        return dict(number=record.number, ref=record.ref, playbook=record.playbook, title=record.title,
                    severity=record.severity, status=record.status, declared_at=record.declared_at,
                    declared_by=record.declared_by, channel_id=record.channel_id, channel_name=record.channel_name,
                    external_id=record.external_id, url=f"{base_url()}/incidents/{record.number}")

    @api.get("/incidents")
    @endpoint
    def list_incidents():
        info = caller()
        query = models.ListQuery.model_validate({k: v for k, v in request.args.items()
                                                 if k in models.ListQuery.model_fields})
        refuse_content(query.model_dump())
        found = records.find(core, info.actor, status=query.status, playbook=query.playbook,
                             external_id=query.external_id, limit=query.limit, offset=query.offset)
        body = models.IncidentList(incidents=[models.IncidentSummary(**summary_of(r)) for r in found])
        return _json(200, body.model_dump(mode="json"))

    def number_of(number: int) -> int:
        if not 1 <= number <= models.MAX_INT:
            raise ApiError(404, "not_found", f"There is no incident INC-{number}.")
        return number

    @api.get("/incidents/<int:number>")
    @endpoint
    def get_incident(number: int):
        info = caller()
        record = records.detail(core, number_of(number), info.actor)
        body = models.IncidentDetail(
            **summary_of(record), resolution=record.resolution, sightings=record.sightings, roles=record.roles,
            steps=[models.StepOut(**s.__dict__) for s in record.steps],
            clocks=[models.ClockOut(**c.__dict__) for c in record.clocks],
            pages=[models.PageOut(**p.__dict__) for p in record.pages])
        return _json(200, body.model_dump(mode="json"))

    @api.get("/incidents/<int:number>/timeline")
    @endpoint
    def get_timeline(number: int):
        info = caller()
        return _json(200, records.timeline(core, number_of(number), info.actor))

    @api.post("/incidents/<int:number>/steps/<step>")
    @endpoint
    def work_step(number: int, step: str):
        info = caller()
        number_of(number)
        req, data = body_of(models.StepRequest)

        def run():
            renamed = {key: f"fields.{key}" for key in req.fields}
            try:
                if req.action == "done":
                    if req.reason is not None:
                        raise ApiError(422, "invalid", "`reason` is for `skip`.", "reason")
                    steps.complete(core, number, step, info.actor, dict(req.fields))
                else:
                    if req.fields:
                        raise ApiError(422, "invalid", "`fields` are for `done`.", "fields")
                    steps.skip(core, number, step, info.actor, req.reason or "")
            except InvalidInput as err:
                if err.fields:  # a step's field ids are under `fields` in the request
                    step_fields = {k: f"fields.{k}" for k in err.fields if k != "reason"}
                    raise from_domain(err, {**renamed, **step_fields}) from None
                raise
            answer = models.StepResponse(number=number, step=step, state="done" if req.action == "done" else "skipped")
            return 200, answer.model_dump(mode="json")

        return once(info, data, run)

    @api.post("/incidents/<int:number>/notes")
    @endpoint
    def add_a_note(number: int):
        info = caller()
        number_of(number)
        req, data = body_of(models.NoteRequest)

        def run():
            outcome = add_note(core, number, info.actor, req.text)
            return 201, models.NoteResponse(number=number, seq=outcome.details["seq"]).model_dump(mode="json")

        return once(info, data, run)

    @api.post("/exposure")
    @endpoint
    def log_viewing():
        info = caller()
        req, data = body_of(models.ExposureRequest)

        def run():
            outcome = log_exposure(core, info.actor, req.user, req.duration, items=req.items, kind=req.kind,
                                   incident_id=req.incident)
            answer = models.ExposureResponse(logged=True, user=req.user, incident=req.incident,
                                             custody_event=outcome.details.get("seq"))
            return 201, answer.model_dump(mode="json")

        return once(info, data, run)

    @api.get("/openapi.json")
    def openapi_json():
        doc = document(OPERATIONS, PREFIX)
        # The playbooks this bot serves (from its playbook folder), so a client knows the ids.
        doc["components"]["schemas"]["DeclareRequest"]["properties"]["playbook"]["enum"] = sorted(core.playbooks)
        return _json(200, doc)

    web.register_blueprint(api)

    def api_errors(err):
        """Unknown paths and methods under /api/ answer in the API's JSON; elsewhere as before."""
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            return err
        code = getattr(err, "code", 500) or 500
        codes = {404: "not_found", 405: "method_not_allowed"}
        allow = {k: v for k, v in err.get_headers() if k == "Allow"} if hasattr(err, "get_headers") else {}
        return _json(code, {"error": codes.get(code, "bad_request"), "message": getattr(err, "description", str(err))},
                     allow)

    web.register_error_handler(404, api_errors)
    web.register_error_handler(405, api_errors)
