"""One upload's live status page."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from app.services import baseline, figures, scores, submissions

bp = Blueprint("submissions", __name__)


@bp.route("/submissions/<int:submission_id>")
@login_required
def show(submission_id: int):
    """Status, checks and results; other teams get 404."""
    submission = submissions.visible_submission(submission_id, current_user)
    if submission is None:
        abort(404, "There is no such submission of your team.")
    score_view = scores.score_view(submission, staff=current_user.is_admin)
    curves = figures.attack_target_curves(submission, score_view)
    roc_svg, topk_svg = figures.curves_svgs(submission, curves)
    return render_template(
        "submissions/show.html",
        submission=submission,
        baseline=baseline.for_submission(submission),
        score_view=score_view,
        heatmaps=figures.defence_heatmaps(submission),
        curves=curves,
        roc_svg=roc_svg,
        topk_svg=topk_svg,
        fpr_marks=figures.FPR_MARKS,
    )
