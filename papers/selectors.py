"""Reads: which papers a user may see, their extracted data and their event log."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Min, OuterRef, QuerySet, Subquery

from realtime.events import STATUS_CHANGED, format_timestamp, utc_now

from .models import Entity, Paper, PaperEvent, PaperStatus, Relationship

DEFAULT_EXPECTED_DURATION = timedelta(seconds=20)


def paper_visible_to(user, owner_id: Any) -> bool:
    """The one access rule: an active, authenticated user sees a paper they own, and staff see every paper."""
    return _may_see_papers(user) and (user.is_staff or user.pk == owner_id)


def paper_list_visible(*, user) -> QuerySet[Paper]:
    """Papers the user may see, by paper_visible_to's rule: their own, or all of them for staff."""
    if not _may_see_papers(user):
        return Paper.objects.none()
    papers = Paper.objects.select_related("owner")
    return papers if user.is_staff else papers.filter(owner_id=user.pk)


def _may_see_papers(user) -> bool:
    """Whether the user may see any paper at all: authenticated and active."""
    return bool(user is not None and user.is_authenticated and user.is_active)


def paper_list_visible_with_seq(*, user, limit: int) -> QuerySet[Paper]:
    """The newest `limit` papers the user may see, each annotated with `last_seq` as paper_get_visible says."""
    return _with_last_seq(paper_list_visible(user=user))[:limit]


def paper_get_visible(*, user, paper_id: Any) -> Paper | None:
    """The paper if it exists and the user may see it; None otherwise, so both cases look alike.

    It comes annotated with `last_seq`, its newest event's seq, read in the same statement: one statement
    sees one database snapshot, so the paper's state and that seq describe the same moment (every event is
    committed together with the change it reports) without a lock or a write transaction."""
    return _with_last_seq(paper_list_visible(user=user).filter(pk=paper_id)).first()


SNAPSHOT_FIELDS = ("id", "owner_id", "title", "original_filename", "status", "progress", "current_step",
                   "step_progress", "estimated_completion", "error_code", "error_message")


def paper_state_get(*, user, paper_id: Any) -> Paper | None:
    """paper_get_visible with only what paper_snapshot reads: the lean query every WebSocket subscribe makes."""
    papers = paper_list_visible(user=user).filter(pk=paper_id).select_related(None).only(*SNAPSHOT_FIELDS)
    return _with_last_seq(papers.order_by()).first()


def _with_last_seq(papers: QuerySet[Paper]) -> QuerySet[Paper]:
    """Annotate each paper with its newest event's seq (None when its log is empty)."""
    newest = PaperEvent.objects.filter(paper=OuterRef("pk")).order_by("-seq").values("seq")[:1]
    return papers.annotate(last_seq=Subquery(newest))


def paper_last_seq(*, paper_id: Any) -> int:
    """The seq of the paper's newest event, 0 when it has none."""
    return PaperEvent.objects.filter(paper_id=paper_id).aggregate(m=Max("seq"))["m"] or 0


def paper_first_seq(*, paper_id: Any) -> int | None:
    """The seq of the paper's oldest retained event; None when its log is empty (new or pruned)."""
    return PaperEvent.objects.filter(paper_id=paper_id).aggregate(m=Min("seq"))["m"]


def paper_snapshot(*, paper: Paper) -> dict[str, Any]:
    """The state a late joiner needs to render the paper at once, with the seq it is current to (a paper from
    paper_get_visible)."""
    return {
        "paper_id": str(paper.pk),
        "title": str(paper),
        "status": paper.status,
        "progress": paper.progress,
        "step": paper.current_step,
        "step_progress": paper.step_progress,
        "estimated_completion": format_timestamp(paper.estimated_completion) if paper.estimated_completion else None,
        "error_code": paper.error_code,
        "error_message": paper.error_message,
        "seq": paper.last_seq or 0,
    }


def paper_events_since(*, paper_id: Any, since: int = 0, limit: int | None = None) -> QuerySet[PaperEvent]:
    """Logged events of a paper after seq `since`, oldest first."""
    events = PaperEvent.objects.filter(paper_id=paper_id, seq__gt=since).order_by("seq")
    return events[:limit] if limit else events


def paper_recovery(*, paper_id: Any, since: int, up_to: int, limit: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Logged payloads in (since, up_to] for a resuming client, and whether they close its gap completely."""
    recovery: dict[str, Any] = {"since": since, "complete": True, "replayed": 0}
    if since > up_to:
        return [], {**recovery, "complete": False, "reason": "unknown_seq"}
    if since == up_to:
        return [], recovery
    first = paper_first_seq(paper_id=paper_id)
    if first is None or first > since + 1:
        return [], {**recovery, "complete": False, "reason": "pruned", "first_available_seq": first}
    if up_to - since > limit:
        return [], {**recovery, "complete": False, "reason": "too_many"}
    payloads = list(
        PaperEvent.objects.filter(paper_id=paper_id, seq__gt=since, seq__lte=up_to)
        .order_by("seq")
        .values_list("payload", flat=True)
    )
    return payloads, {**recovery, "replayed": len(payloads)}


def paper_status_logged(*, paper_id: Any) -> tuple[str, str] | None:
    """The new_status and message of the paper's newest status_changed event; None when it has none.

    With the paper's row locked this is its stored status: every status change is logged with it."""
    payload = (
        PaperEvent.objects.filter(paper_id=paper_id, event_type=STATUS_CHANGED)
        .order_by("-seq").values_list("payload", flat=True).first()
    )
    return (payload["new_status"], payload["message"]) if payload else None


def paper_status_history(*, paper_id: Any) -> list[dict[str, Any]]:
    """The paper's retained status_changed payloads, oldest first."""
    return list(
        PaperEvent.objects.filter(paper_id=paper_id, event_type="status_changed")
        .order_by("seq")
        .values_list("payload", flat=True)
    )


def entity_list(*, paper: Paper) -> QuerySet[Entity]:
    """Entities of a paper, grouped by type."""
    return Entity.objects.filter(paper=paper).order_by("entity_type", "-confidence", "name")


def relationship_list(*, paper: Paper) -> QuerySet[Relationship]:
    """Relationships of a paper with their two entities and their metric."""
    return Relationship.objects.filter(paper=paper).select_related("source", "target", "metric")


def expected_processing_duration() -> timedelta:
    """Mean duration of recently completed papers: the prior for an ETA before progress says more."""
    pairs = (
        Paper.objects.filter(status=PaperStatus.COMPLETED, started_at__isnull=False, completed_at__isnull=False)
        .order_by("-completed_at")
        .values_list("started_at", "completed_at")[:20]
    )
    durations = [done - started for started, done in pairs]
    mean = sum(durations, timedelta()) / len(durations) if durations else None
    return mean or DEFAULT_EXPECTED_DURATION


def processing_rate_per_minute() -> float:
    """Papers completed per minute over the configured recent window."""
    window = settings.PROCESSING_RATE_WINDOW
    done = Paper.objects.filter(status=PaperStatus.COMPLETED, completed_at__gte=utc_now() - window).count()
    return round(done / (window.total_seconds() / 60), 3)


def paper_counts_by_status() -> dict[str, int]:
    """How many papers there are in each status, every status named (0 when none): one GROUP BY."""
    counts = dict.fromkeys(PaperStatus.values, 0)
    for row in Paper.objects.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


EVALUATIONS_LIMIT = 5000  # result rows read for the library page: a bound on one request's work


def evaluation_list(*, user, limit: int = EVALUATIONS_LIMIT) -> list[dict[str, Any]]:
    """Which models (or methods) the user's own papers evaluated on which datasets, one row per pair with its
    papers (and each one's metric and score), most papers first: one query.

    Only papers the user owns, staff included: this is the user's library, not the whole site."""
    if not _may_see_papers(user):
        return []
    results = (
        Relationship.objects.filter(paper__owner_id=user.pk, relationship_type="EVALUATED_ON")
        .order_by("-paper__created_at", "paper_id", "created_at")
        .values_list("source__name", "target__name", "paper_id", "paper__title", "paper__original_filename",
                     "metric__name", "score")[:limit]
    )
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for model, dataset, paper_id, title, filename, metric, score in results:
        pair = pairs.setdefault((model, dataset), {"model": model, "dataset": dataset, "papers": {}})
        # The first result read for a paper stands: a model is evaluated on a dataset once per paper.
        pair["papers"].setdefault(paper_id, {
            "id": paper_id, "title": title or filename or str(paper_id), "metric": metric, "score": score or None,
        })
    rows = [{**pair, "papers": list(pair["papers"].values())} for pair in pairs.values()]
    for row in rows:
        row["count"] = len(row["papers"])
    return sorted(rows, key=lambda row: (-row["count"], row["model"].casefold(), row["dataset"].casefold()))
