"""Server-rendered pages: paper list with upload, a paper's progress page, and the download of its file."""

import os

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import get_valid_filename
from django.views.decorators.http import require_GET, require_http_methods

from . import display, selectors, services
from .models import EXTENSIONS, Paper
from .pipeline.types import ENTITY_TYPES

# The only types a file is ever served as: nothing a browser would run or render as a page.
SAFE_TYPES = {"application/pdf": "application/pdf", "text/plain": "text/plain; charset=utf-8"}

LIST_LIMIT = 200


@login_required
@require_http_methods(["GET", "POST"])
def paper_list(request: HttpRequest) -> HttpResponse:
    """List the user's papers; POST uploads one or more files."""
    if request.method == "POST":
        files = request.FILES.getlist("file")
        if not files:
            messages.error(request, "Choose at least one PDF or text file.")
        title = request.POST.get("title", "") if len(files) == 1 else ""  # one title cannot name several files
        for upload in files:
            try:
                services.paper_create(owner=request.user, file=upload, title=title)
                messages.success(request, f"{upload.name} uploaded and queued.")
            except ValidationError as exc:
                messages.error(request, f"{upload.name}: {exc.messages[0]}")
        return redirect("paper-list")
    papers = selectors.paper_list_visible_with_seq(user=request.user, limit=LIST_LIMIT)
    return render(request, "papers/paper_list.html", {"papers": papers})


@login_required
@require_GET
def paper_rows(request: HttpRequest) -> HttpResponse:
    """The list's rows alone, each current to its `data-seq`: what the live list reconciles with."""
    papers = selectors.paper_list_visible_with_seq(user=request.user, limit=LIST_LIMIT)
    return render(request, "papers/_paper_rows.html", {"papers": papers})


@login_required
@require_GET
def paper_row(request: HttpRequest, paper_id) -> HttpResponse:
    """One paper's row, current to its `data-seq`: what the live list fills a row in from."""
    paper = _visible_or_404(request, paper_id)
    return render(request, "papers/_paper_row.html", {"paper": paper})


@login_required
def paper_detail(request: HttpRequest, paper_id) -> HttpResponse:
    """A paper's progress page: state, entities, relationships and event timeline."""
    paper = _visible_or_404(request, paper_id)
    entities = selectors.entity_list(paper=paper)
    relationships = sorted(selectors.relationship_list(paper=paper), key=display.relationship_order)
    context = {
        "paper": paper,
        "snapshot": selectors.paper_snapshot(paper=paper),
        "entity_groups": _grouped(entities),
        "relationships": relationships,
        "graph": _graph(entities, relationships),
        "timeline": selectors.paper_status_history(paper_id=paper.pk),
    }
    return render(request, "papers/paper_detail.html", context)


@login_required
@require_GET
def paper_library(request: HttpRequest) -> HttpResponse:
    """Across the user's own papers: which models were evaluated on which datasets, linking to the papers."""
    evaluations = selectors.evaluation_list(user=request.user)
    context = {
        "evaluations": evaluations,
        "model_count": len({row["model"] for row in evaluations}),
        "dataset_count": len({row["dataset"] for row in evaluations}),
        "paper_count": len({paper["id"] for row in evaluations for paper in row["papers"]}),
    }
    return render(request, "papers/paper_library.html", context)


@login_required
@require_GET
def paper_file(request: HttpRequest, paper_id) -> FileResponse:
    """Download a paper's file, if the user may see the paper."""
    paper = _visible_or_404(request, paper_id)
    return paper_file_response(paper)


def paper_file_response(paper: Paper) -> FileResponse:
    """A paper's file as an attachment of a safe type that no browser sniffs, renders or runs in this origin."""
    content_type = paper.content_type if paper.content_type in SAFE_TYPES else "text/plain"
    try:
        handle = paper.file.open("rb")
    except (FileNotFoundError, ValueError) as exc:  # gone from disk, or never stored
        raise Http404("No such paper.") from exc
    response = FileResponse(
        handle, as_attachment=True, filename=download_name(paper, content_type), content_type=SAFE_TYPES[content_type]
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"  # opened anyway (a stored file of an old path): no scripts
    response["Cache-Control"] = "private, no-store"
    return response


def download_name(paper: Paper, content_type: str) -> str:
    """The uploader's file name reduced to letters, digits, '-', '_' and '.', with the extension of its type."""
    stem = os.path.splitext(paper.original_filename)[0][:100]
    try:
        stem = get_valid_filename(stem)
    except SuspiciousFileOperation:  # nothing usable left of the name
        stem = "paper"
    return stem + EXTENSIONS[content_type]


def _visible_or_404(request: HttpRequest, paper_id) -> Paper:
    """The paper if the user may see it (paper_get_visible filters by the access rule, paper_visible_to says it
    again for the row found); a 404 alike for a missing paper and someone else's."""
    paper = selectors.paper_get_visible(user=request.user, paper_id=paper_id)
    if paper is None or not selectors.paper_visible_to(request.user, paper.owner_id):
        raise Http404("No such paper.")
    return paper


def _graph(entities, relationships) -> dict[str, list]:
    """The paper's entities and relationships as the graph on its page starts from (the same fields its events
    carry, and each relationship's evidence)."""
    nodes = [{"entity_id": str(e.pk), "entity_type": e.entity_type, "entity_name": e.name, "key": e.key}
             for e in entities]
    edges = [{"relationship_id": str(r.pk), "relationship_type": r.relationship_type, "source_id": str(r.source_id),
              "target_id": str(r.target_id), "confidence": r.confidence, "evidence": r.evidence,
              "metric": r.metric.name if r.metric else None, "score": r.score or None}
             for r in relationships]
    return {"nodes": nodes, "edges": edges}


def _grouped(entities) -> list[tuple[str, list]]:
    """Entities by type, in the order readers scan them."""
    groups = {kind: [] for kind in ENTITY_TYPES}
    for entity in sorted(entities, key=display.entity_order):
        groups.setdefault(entity.entity_type, []).append(entity)
    return list(groups.items())
