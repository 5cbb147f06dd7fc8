"""Storage events as AWS delivers them to a function: the shape read from the event, a whole batch recorded at once.

One function serves every wiring, because the shape is detected from the event itself:

- an S3 event notification invoking the function directly: ``{"Records": [{"eventSource": "aws:s3", ...}]}``;
- an EventBridge event invoking it directly: ``{"source": "aws.s3", "detail-type": "Object Created", ...}``;
- an SQS batch, ``{"Records": [{"eventSource": "aws:sqs", "messageId": ..., "body": ...}]}``, whose message
  bodies are S3 notifications (S3 → SQS), ``s3:TestEvent`` messages (S3 sends one when it is given a queue),
  EventBridge events (S3 → EventBridge → SQS), or Lambda destination records whose ``requestPayload`` is one
  of those (what an on-failure destination keeps after a direct invocation failed for good: redriven to the
  queue, it is recorded like any other message).

Failure rules. For SQS, Powertools' partial batch response: only the messages that failed come back in
``batchItemFailures``, and SQS delivers those again (then dead-letters them). A message that cannot be read
fails alone (never silently dropped); the events of all the other messages are recorded in one call, one
Redis round trip; if Redis or the storage is unavailable, every message that carried an event fails - recording
is idempotent, so delivering them again is safe. A direct invocation raises instead, so Lambda retries it and
then hands it to the function's on-failure destination.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from aws_lambda_powertools.utilities.batch.base import BasePartialBatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.exceptions import ExceptionInfo
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from hera_sessions.core import telemetry
from hera_sessions.core.errors import UnavailableError
from hera_sessions.core.events import UnreadableEventError
from hera_sessions.core.models import EventResult, Outcome, StorageEvent
from hera_sessions.runtimes.aws import s3events as s3

logger = logging.getLogger("hera_sessions")

#: Records a batch of events and says what became of each (``SessionService.record_events``).
Recorder = Callable[[Sequence[StorageEvent]], list[EventResult]]

#: The metric each outcome counts towards (plus ``BatchFailures``: the SQS messages reported as failed and the
#: direct invocations that raised - everything that will be delivered again).
METRICS: dict[Outcome, str] = {
    Outcome.RECORDED: "EventsRecorded",
    Outcome.REMOVED: "EventsRemoved",
    Outcome.REJECTED: "EventsRefused",
    Outcome.ERASED: "EventsRefused",
    Outcome.SKIPPED: "EventsSkipped",
    Outcome.UNKNOWN_SESSION: "EventsSkipped",
    Outcome.DUPLICATE: "EventsSuperseded",
    Outcome.STALE: "EventsSuperseded",
}


def is_sqs_batch(event: Mapping[str, Any]) -> bool:
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def is_destination_record(payload: Mapping[str, Any]) -> bool:
    """A Lambda destination record: the failed invocation's event is its ``requestPayload``."""
    return isinstance(payload.get("requestPayload"), dict) and "requestContext" in payload


def _describe(payload: Mapping[str, Any]) -> str:
    if s3.is_test_event(payload):
        return "s3:TestEvent"
    if s3.is_eventbridge(payload):
        return str(payload.get("detail-type"))
    return ", ".join(sorted({str(r.get("eventName")) for r in payload.get("Records", ())}))


def read_payload(payload: object) -> tuple[list[StorageEvent], int]:
    """The storage events in one S3 or EventBridge payload, and how many notices in it were skipped.

    Skipped: ``s3:TestEvent`` and notices with nothing to record (restores, transitions, tagging...).
    Raises UnreadableEventError for anything else.
    """
    if not isinstance(payload, Mapping):
        raise UnreadableEventError("The event is not a JSON object.")
    notice: Mapping[str, Any] = payload["requestPayload"] if is_destination_record(payload) else payload
    events = s3.parse(notice)
    records = notice.get("Records")
    notices = len(records) if isinstance(records, list) else 1
    skipped = notices - len(events)
    if skipped:
        logger.info("storage notification skipped", extra={"notice": _describe(notice), "skipped": skipped})
    return events, skipped


def read_body(body: object) -> tuple[list[StorageEvent], int]:
    """:func:`read_payload` for an SQS message body (JSON text, read by orjson: a third of ``json.loads``'s time)."""
    if not isinstance(body, str):
        raise UnreadableEventError("The message has no body.")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UnreadableEventError("The message body is not JSON.") from None
    return read_payload(payload)


class StorageEventBatch(BasePartialBatchProcessor):
    """Powertools' partial batch response for SQS, with the events of every message recorded in one call.

    Powertools' ``BatchProcessor`` calls a handler once per message; this processor reads every message first
    (one that cannot be read fails alone), then hands all the events to its handler at once - one Redis round
    trip for the batch - and fails every message that carried an event when that raises UnavailableError.
    """

    def __init__(self) -> None:
        # An SQS batch whose every message failed is answered like any other: all of them listed as failed.
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False)
        self.results: list[EventResult] = []
        self.skipped = 0

    def _prepare(self) -> None:
        super()._prepare()  # type: ignore[no-untyped-call]
        self.results = []
        self.skipped = 0

    def process(self) -> list[tuple[Any, ...]]:
        """Read every message, record all their events in one call; the answers of the messages that failed.

        Only failures are kept (Powertools builds the partial batch response from them): a message that was
        read and recorded leaves no object behind.
        """
        failures: dict[int, ExceptionInfo] = {}
        carriers: list[int] = []  # the messages that carried events: they fail together if recording cannot run
        batch: list[StorageEvent] = []
        for index, raw in enumerate(self.records):
            try:
                events, skipped = read_body(raw.get("body"))
            except UnreadableEventError as exc:
                logger.warning(
                    "unreadable message reported as failed",
                    extra={"message_id": raw.get("messageId"), "code": exc.code, "reason": exc.message},
                )
                failures[index] = sys.exc_info()
                continue
            self.skipped += skipped
            if events:
                batch += events
                carriers.append(index)
        try:
            self.results = self.handler(batch) if batch else []
        except UnavailableError as exc:
            logger.error(
                "storage events not recorded: their messages are reported as failed and will come again",
                extra={"code": exc.code, "events": len(batch), "keys": [event.key for event in batch]},
            )
            failures |= dict.fromkeys(carriers, sys.exc_info())
        return [self.failure_handler(SQSRecord(self.records[i]), failures[i]) for i in sorted(failures)]

    def _process_record(self, record: dict[str, Any]) -> Any:
        raise NotImplementedError("a batch is recorded whole: see process()")

    async def _async_process_record(self, record: dict[str, Any]) -> Any:
        raise NotImplementedError("a batch is recorded whole: see process()")


def record_sqs_batch(messages: list[dict[str, Any]], record: Recorder) -> dict[str, Any]:
    """``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}``: only the messages SQS must deliver again."""
    processor = StorageEventBatch()
    with processor(messages, record):
        processor.process()
    _count(processor.results, processor.skipped, failures=len(processor.fail_messages))
    return dict(processor.response())


def record_direct(event: Mapping[str, Any], record: Recorder) -> dict[str, int]:
    """S3 or EventBridge invoking the function: any failure raises, so Lambda retries the invocation.

    Returns how many events ended in each outcome (Lambda discards it for asynchronous invocations).
    """
    try:
        events, skipped = read_payload(event)
        results = record(events) if events else []
    except (UnreadableEventError, UnavailableError) as exc:
        logger.error(
            "storage event not recorded: the invocation fails and Lambda retries it",
            extra={"code": exc.code, "reason": exc.message},
        )
        telemetry.count("BatchFailures")
        raise
    _count(results, skipped, failures=0)
    return dict(Counter(result.outcome.value for result in results))


def handle(event: Mapping[str, Any], record: Recorder) -> dict[str, Any]:
    """One invocation of the storage-event function, whatever the event's shape."""
    if is_sqs_batch(event):
        return record_sqs_batch(event["Records"], record)
    return record_direct(event, record)


def _count(results: Sequence[EventResult], skipped: int, failures: int) -> None:
    totals = Counter(METRICS[result.outcome] for result in results)
    totals["EventsSkipped"] += skipped
    totals["BatchFailures"] += failures
    for name, value in totals.items():
        telemetry.count(name, value)
