"""Entry point: `flask --app srs ...` and `celery -A srs.celery worker`."""

import sqlalchemy as sa
import sqlalchemy.orm as so

import db_scripts
from app import create_app
from app.extensions import db
from app.models import ApiToken, Attack, CompetitionState, Defence, Match, Round, Submission, Team, User

app = create_app()
celery = app.extensions["celery"]


@app.shell_context_processor
def make_shell_context():
    return {
        "sa": sa,
        "so": so,
        "db": db,
        "User": User,
        "Team": Team,
        "Submission": Submission,
        "Defence": Defence,
        "Match": Match,
        "Round": Round,
        "Attack": Attack,
        "ApiToken": ApiToken,
        "CompetitionState": CompetitionState,
        **{name: getattr(db_scripts, name) for name in db_scripts.__all__},
    }
